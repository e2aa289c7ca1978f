#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_datapath_fail.sh: the nftables table disappears under a running pcpd and comes back.
#   1. `nft delete table inet pcpd`: a new MAP, a refresh and a PEER get NO_RESOURCES or
#      NETWORK_FAILURE (RFC 6887 §7.4: pcpd answers NO_RESOURCES when the kernel refuses the
#      batch), pcpctl list is unchanged (nothing half-applied), pcpd keeps running.
#   2. `nft -f nft-rules/pcpd.nft`: pcpd notices (NftDatapath::check_table, probed every second
#      while the table is gone) and re-installs every mapping it holds in one transaction: the
#      table matches pcpctl list element for element, inbound traffic to the old mapping works
#      again, the old nonce refreshes with the same port, a new MAP succeeds.
#   3. The table replaced in one transaction with no gap (what `systemctl restart nftables`
#      does: flush ruleset + reload): found by the periodic check (every 5 s), re-installed too.
# Each time the table is new, pcpd gives its timeout sets a 60 s gc-interval (the kernel's 1 s
# walk of every element costs ~9 % of a CPU per million; NftDatapath::tune_gc_interval); a set
# the operator gave an interval of its own keeps it.
# Requirements: R-HDR-10 (all or nothing), R-RC-2 (short-lifetime error), R-OWN-5 (nonce kept),
# R-EPOCH-3 (nothing lost: the epoch stays continuous).
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-180}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_datapath_fail
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8080 "$LAB_DIR/l8080.log"
lab_listen "$LAB_WAN" 9000 "$LAB_DIR/wan9000.log"
r=$LAB_DIR/r
n1=$(lab_nonce) n2=$(lab_nonce) n3=$(lab_nonce) bad=$(lab_nonce)

is_failure() { # the result of the last pcpc --json in FILE is NO_RESOURCES or NETWORK_FAILURE
  local got
  got=$(lab_json "$1" result)
  echo "    result: got '$got', want NO_RESOURCES or NETWORK_FAILURE"
  [ "$got" = NO_RESOURCES ] || [ "$got" = NETWORK_FAILURE ]
}
wait_resynced() { # wait_resynced COUNT SECONDS: until pcpd_datapath_resyncs_total >= COUNT
  local i
  for i in $(seq 1 $(($2 * 10))); do
    [ "$(lab_stat pcpd_datapath_resyncs_total)" -ge "$1" ] 2>/dev/null && { lab_log "resync seen after $((i / 10)).$((i % 10)) s"; return 0; }
    sleep 0.1
  done
  return 1
}

gc_intervals() { # gc_intervals FILE: "set seconds" for every timeout set of inet pcpd (0: none)
  lab_rtr nft -j list table inet pcpd | python3 -c '
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    s = o.get("set") or o.get("map")
    if s and "timeout" in s.get("flags", []):
        print(s["name"], s.get("gc-interval", 0))' >"$1"
  sed 's/^/    /' "$1"
}
all_gc() { # all_gc TAG SECONDS [EXCEPT_SET EXCEPT_SECONDS]: 18 timeout sets, each at SECONDS
  local n f=$LAB_DIR/gc.$1
  gc_intervals "$f"
  n=$(wc -l <"$f")
  echo "    timeout sets: $n (want 18)"
  [ "$n" = 18 ] || return 1
  awk -v want="$2" -v xs="${3:-}" -v xv="${4:-}" '
    { w = ($1 == xs) ? xv : want; if ($2 != w) { print "    " $1 ": " $2 " s, want " w; bad = 1 } }
    END { exit bad }' "$f"
}

check "every timeout set has pcpd's 60 s gc-interval" all_gc start 60
check "... logged as applied" grep -q 'nft.gc_interval interval_ms=60000 asked=18 applied=18 result=applied' "$LAB_PCPD_LOG"

lab_log "before: a MAP and a PEER"
check "MAP tcp 8080 exits 0" lab_pc "$r.map" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n1"
ext=$(lab_json "$r.map" external_port)
epoch1=$(lab_json "$r.map" epoch)
check "PEER tcp 40001 -> 203.0.113.100:9000 exits 0" lab_pc "$r.peer" -s 192.0.2.1 peer -p tcp -i 40001 \
  -r 203.0.113.100:9000 -l 600 -n "$n2"
pext=$(lab_json "$r.peer" external_port)
check "inbound 203.0.113.1:$ext reaches the client" lab_connect "$LAB_WAN" 203.0.113.1 "$ext"
check "pcpctl list and inet pcpd match (2 mappings)" lab_consistent before 2
pcpctl list --json >"$LAB_DIR/list.before.json"

lab_log "nft delete table inet pcpd under the running pcpd (pid $LAB_PCPD_PID)"
lab_rtr nft delete table inet pcpd || lab_die "nft delete table"
lab_pc "$r.new" -s 192.0.2.1 map -p tcp -i 8081 -l 600 -n "$n3"
check "R-HDR-10 a new MAP: NO_RESOURCES or NETWORK_FAILURE" is_failure "$r.new"
check "R-RC-2 ... a short-lifetime error (lifetime <= 30)" lab_ge "30 - lifetime" $((30 - $(lab_json "$r.new" lifetime))) 0
lab_pc "$r.ref" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n1"
check "R-HDR-10 a refresh of the MAP: NO_RESOURCES or NETWORK_FAILURE" is_failure "$r.ref"
lab_pc "$r.peer2" -s 192.0.2.1 peer -p tcp -i 40002 -r 203.0.113.100:9000 -l 600 -n "$n3"
check "R-HDR-10 a new PEER: NO_RESOURCES or NETWORK_FAILURE" is_failure "$r.peer2"
check "pcpd is still running" kill -0 "$LAB_PCPD_PID"
pcpctl list --json >"$LAB_DIR/list.gone.json"
check "R-HDR-10 nothing half-applied: pcpctl list is unchanged (no 8081, no 40002, same lifetimes)" \
  python3 -c "
import json, sys
strip = lambda l: sorted(json.dumps({k: v for k, v in m.items() if k != 'remaining'}, sort_keys=True) for m in l)
sys.exit(0 if strip(json.load(open('$LAB_DIR/list.before.json'))) == strip(json.load(open('$LAB_DIR/list.gone.json'))) else 1)"
sleep 1.5
check "pcpd logged the table as lost" grep -q 'nft.table_lost' "$LAB_PCPD_LOG"

lab_log "nft -f nft-rules/pcpd.nft: the table is back, empty"
lab_rtr nft -f "$LAB_SRC/nft-rules/pcpd.nft" || lab_die "nft -f pcpd.nft"
check "pcpd re-installs its mappings within 5 s" wait_resynced 1 5
grep -E 'datapath.resynced|nft.reinstalled' "$LAB_PCPD_LOG" | lab_ev
check "the table holds the 2 mappings again, element for element" lab_consistent back 2
check "the new table's timeout sets have the 60 s gc-interval again" all_gc back 60
check "wan_ifnames holds wan0 again" bash -c "ip netns exec $LAB_RTR nft list set inet pcpd wan_ifnames | grep -q wan0"
check "inbound 203.0.113.1:$ext reaches the client again" lab_connect "$LAB_WAN" 203.0.113.1 "$ext"
check "PEER translates 40001 -> $pext again" lab_connect "$LAB_CLI" 203.0.113.100 9000 --sport 40001
check "... seen by the remote host from 203.0.113.1:$pext" grep -q "^peer 203.0.113.1 $pext\$" "$LAB_DIR/wan9000.log"
check "R-OWN-5 refresh with the old nonce exits 0" lab_pc "$r.ref2" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n1"
check "R-OWN-5 ... same external port" lab_eq external_port "$(lab_json "$r.ref2" external_port)" "$ext"
check "R-EPOCH-3 epoch continuous (after >= before)" lab_ge epoch "$(lab_json "$r.ref2" epoch)" "$epoch1"
lab_pc "$r.bad" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$bad"
check "R-OWN-2 another nonce: NOT_AUTHORIZED" lab_eq result "$(lab_json "$r.bad" result)" NOT_AUTHORIZED
check "a new MAP tcp 8081 succeeds" lab_pc "$r.new2" -s 192.0.2.1 map -p tcp -i 8081 -l 600 -n "$n3"
check "pcpctl list and inet pcpd match (3 mappings)" lab_consistent new 3

lab_log "the whole ruleset replaced in one transaction (flush ruleset + reload, no gap)"
cat >"$LAB_DIR/ruleset.nft" <<EOF
flush ruleset
include "$LAB_SRC/nft-rules/example-router.nft"
include "$LAB_SRC/nft-rules/pcpd.nft"
add set inet pcpd pin6 { type ipv6_addr . inet_proto . inet_service; flags timeout; gc-interval 2m; }
EOF
# pcpd held still (SIGSTOP) over the reload and the first look: its periodic check could
# otherwise re-install before the checker looks, and the check would race it.
# pcpd's table (pcpctl list) is taken first; it cannot answer while stopped.
pcpctl list --json >"$LAB_DIR/list.empty.json" || lab_die "pcpctl list"
kill -STOP "$LAB_PCPD_PID"
lab_rtr nft -f "$LAB_DIR/ruleset.nft" || { kill -CONT "$LAB_PCPD_PID"; lab_die "nft -f ruleset.nft"; }
lab_rtr nft -j list table inet pcpd >"$LAB_DIR/nft.empty.json"
kill -CONT "$LAB_PCPD_PID"
check "the checker's input is complete: pcpd's 3 mappings and the reloaded kernel table" \
  eval '[ "$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$LAB_DIR/list.empty.json")" = 3 ] &&
        [ -s "$LAB_DIR/nft.empty.json" ]'
check_not "right after the reload the table is empty (the checker sees the loss)" \
  python3 "$LAB_SRC/tests/integration/robust_tool.py" consistency --list "$LAB_DIR/list.empty.json" \
  --nft "$LAB_DIR/nft.empty.json" --expect 3
check "pcpd re-installs its mappings within 8 s (periodic check)" wait_resynced 2 8
check "the table holds the 3 mappings again, element for element" lab_consistent replaced 3
check "gc-interval: 60 s again, the operator's 120 s on pin6 kept" all_gc replaced 60 pin6 120
check "inbound 203.0.113.1:$ext reaches the client after the reload" lab_connect "$LAB_WAN" 203.0.113.1 "$ext"
check "pcpd is still the same process" kill -0 "$LAB_PCPD_PID"
check "one pcpd start in its log (no restart)" lab_eq starts "$(grep -c 'daemon.start' "$LAB_PCPD_LOG")" 1
lab_finish
