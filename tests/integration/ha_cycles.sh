#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ha_cycles.sh: the HA pair through an operator's week, with traffic in flight. Two routers built
# only from what README "High availability" and ha/ ship (scripts/ha-lab.sh: example-router.nft,
# ha/nat-vip.nft, pcpd.nft, ha/conntrackd.conf, ha/keepalived.conf with its track_script and
# notify_stop, ha/pcpd-ha-notify, ha/pcpd-ha-check), pcpd with [ha] (hot standby) and
# [checkpoint]. Four elected flows (MAP and PEER, TCP and UDP) send a message every 10 ms each
# (100 messages/s per flow) through every cycle:
#   1. the primary dies (processes killed, links down, its tables gone: a power cut) and returns
#   2. planned switchover: keepalived stopped on the primary (notify_stop), then started again
#   3. the primary dies while the client refreshes its mappings against the backup (the peer is
#      missing: served without the option, the wish deferred), then returns and preempts
#   4. the backup's pcpd and conntrackd are restarted while the primary serves
#   5. both pcpd are restarted in turn
# After each: every elected flow runs on with the same external endpoint and no reset, nothing
# of the cycle's fresh unelected flows reaches a conntrackd cache, the primary lists every
# elected mapping and accepts a new connection on the first SYN, and the backup is ready.
# Prints the failover times (event to VIPs moved, event to the first PCP answer) and each
# flow's longest gap per cycle. HA_CT_FILL=N (test ha_cycles_busy): N unrelated conntrack
# entries on each router first.
# Requirements: R-CKPT-6 (elected state survives failover and failback), RFC 7767 §3.2 (an
# election refused for the missing peer is made when it is back).
# shellcheck disable=SC2086,SC2016
set -u
: "${LAB_WATCHDOG:=600}"
export LAB_WATCHDOG
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/ha-lab.sh"

HA_CHECKPOINT_CONF="enabled = true
max_per_client = 16"
ha_init ha_cycles
ha_up
ha_peer_key
r=$LAB_DIR/pc
REPORT=$LAB_DIR/report.txt

# A router's whole start, in the documented order: conntrackd, pcpd, keepalived.
router_start() {
  ha_ctd_start "$1"
  ha_pcpd_start "$1" || lab_die "pcpd did not start on $1"
  ha_ka_start "$1"
}
lab_log "conntrackd, pcpd, keepalived on both routers"
router_start r1
router_start r2
ha_waitfor 20 ha_vip_on r1 || lab_die "r1 never became VRRP master"

# HA_CT_FILL: unrelated connections, created with events off as pcpd.nft's event mask keeps a
# real router's unelected flows silent. After the backup's first notify has purged its table
# (conntrackd -t, PurgeTimeout 5 s), and again on a router that boots.
fill_router() {
  [ -n "${HA_CT_FILL:-}" ] || return 0
  local fill=${PCPD_BUILD_DIR:-$LAB_SRC/build}/bench/pcpd-ct-fill
  [ -x "$fill" ] || lab_die "pcpd-ct-fill not built at $fill"
  ha_x "$1" sysctl -qw net.netfilter.nf_conntrack_events=0
  ha_x "$1" "$fill" "$HA_CT_FILL" --timeout 1200 | lab_ev
  ha_x "$1" sysctl -qw net.netfilter.nf_conntrack_events=1
}
if [ -n "${HA_CT_FILL:-}" ]; then
  sleep 6
  fill_router r1
  fill_router r2
  check "busy routers: r1 and r2 each hold at least $HA_CT_FILL conntrack entries" \
    eval '[ "$(ha_x r1 conntrack -C)" -ge "$HA_CT_FILL" ] && [ "$(ha_x r2 conntrack -C)" -ge "$HA_CT_FILL" ]'
fi

# ---- helpers -----------------------------------------------------------------------------------
ready() { # ready R: keepalived's track_script on R passes now (or, keepalived stopped, pcpctl does)
  ha_ctl "$1" ha ready >/dev/null 2>&1
}
notified() { # notified R ROLE N: R's notify ran ROLE to its end at least N times
  [ "$(grep -c "$2 end" "$LAB_DIR/$1/notify.log" 2>/dev/null)" -ge "$3" ]
}
nprimary() { grep -c 'primary end' "$LAB_DIR/$1/notify.log" 2>/dev/null; }

# first_answer T0: seconds from T0 (date +%s.%N) until pcpc gets an ANNOUNCE answer from the VIP.
first_answer() {
  local t0=$1 i
  for i in $(seq 1 60); do
    if lab_pcpcq --timeout 0.5 -s "$HA_VIP_LAN" announce >/dev/null 2>&1; then
      python3 -c "import sys,time; print('%.2f' % (time.time() - float(sys.argv[1])))" "$t0"
      return 0
    fi
  done
  echo never
  return 1
}
lab_pcpcq() { timeout 10 ip netns exec "$HA_CLI" "$PCPC_BIN" "$@"; }

# new_conn: a new TCP connection from the remote host to the elected MAP (VIP:E1) must complete
# on its first SYN: connect within 0.9 s (Linux retransmits an unanswered SYN after 1 s).
new_conn() {
  ha_x "$HA_SRV" python3 - "$HA_VIP_WAN" "$E1" <<'EOF'
import socket, sys, time
s = socket.socket(); s.settimeout(0.9); t = time.time()
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b"hello\n"); s.settimeout(2)
    r = s.recv(100)
    print("connected in %.3f s, echo %r" % (time.time() - t, r)); sys.exit(0 if r.startswith(b"hello ") else 1)
except OSError as e:
    print("no connection after %.3f s: %s" % (time.time() - t, e)); sys.exit(1)
EOF
}

elected_list() { python3 -c 'import json,sys
for m in json.load(open(sys.argv[1])):
    if m.get("checkpoint"): print(m["kind"], m["protocol_number"], m["internal"])' "$1" 2>/dev/null | sort | tr '\n' ';'; }
WANT_LIST="map 17 192.0.2.10:8003;map 6 192.0.2.10:8001;peer 17 192.0.2.10:41001;peer 6 192.0.2.10:40001;"
ELECTED="40001 41001 50001 51001"

# pcpmap NAME ARGS...: one pcpc request with --checkpoint and the mapping's own nonce.
pcpmap() {
  local name=$1
  shift
  lab_pc "$r.$name" -s "$HA_VIP_LAN" "$@" --checkpoint
}
refresh_all() { # refresh_all TAG: every elected mapping refreshed with its nonce and the option
  pcpmap "$1-mt" map -p tcp -i 8001 -e "$E1" -l 600 -n "$N1" &&
    pcpmap "$1-mu" map -p udp -i 8003 -e "$E3" -l 600 -n "$N3" &&
    pcpmap "$1-pt" peer -p tcp -i 40001 -r 203.0.113.100:7001 -l 600 -n "$N5" &&
    pcpmap "$1-pu" peer -p udp -i 41001 -r 203.0.113.100:7001 -l 600 -n "$N6"
}
echoed() { # echoed TAG true|"": the option as the four responses of refresh_all TAG carry it
  local x
  for x in mt mu pt pu; do [ "$(lab_json "$r.$1-$x" options.checkpoint)" = "$2" ] || return 1; done
}

# Fresh unelected flows for cycle C: a PEER-less outbound TCP flow and an inbound one through
# the unelected MAP. They break at a failover; what matters is that conntrackd never gets them.
UNELECTED=""
unelected_flows() {
  UNELECTED="$((40100 + $1)) $((50100 + $1))"
  # The unelected MAP is not carried to the other router: (re)create it on the primary first.
  lab_pc "$r.map-mt-u$1" -s "$HA_VIP_LAN" map -p tcp -i 8002 -l 600 -n "$N2" >/dev/null
  E2=$(lab_json "$r.map-mt-u$1" external_port)
  ha_flow $((40100 + $1)) "$HA_CLI" tcp 203.0.113.100 7001 $((40100 + $1))
  ha_flow $((50100 + $1)) "$HA_SRV" tcp "$HA_VIP_WAN" "$E2" $((50100 + $1))
  ha_waitfor 8 ha_allrunning $UNELECTED || echo "  (unelected flows of cycle $1 not running)"
}

# progressing: every elected flow got new echoes within the last 1.5 s (a stalled TCP flow stays
# RUNNING until its 12 s timeout; this sees it at once).
ok_of() { sed -n 's/^RUNNING ok=\([0-9]*\).*/\1/p' "$HA_APP/$1.st" 2>/dev/null; }
progressing() {
  local f before=()
  for f in $ELECTED; do before+=("$(ok_of $f)"); done
  sleep 1.5
  local i=0
  for f in $ELECTED; do
    local now
    now=$(ok_of $f)
    [ -n "$now" ] && [ -n "${before[$i]}" ] && [ "$now" -gt "${before[$i]}" ] || {
      echo "    flow $f: ok=${before[$i]:-none} then ${now:-none}"
      return 1
    }
    i=$((i + 1))
  done
}

# cache_ok R -i|-e: R's conntrackd cache has every elected flow and none of the unelected ones.
cache_ok() {
  local have f
  have=" $(ha_ct_sports "$1" "$2") "
  for f in $ELECTED; do [[ $have == *" $f "* ]] || return 1; done
  for f in $UNELECTED; do [[ $have == *" $f "* ]] && return 1; done
  return 0
}

# settled C P B: the end state of cycle C with P primary and B backup.
settled() {
  local c=$1 p=$2 b=$3 f
  ha_waitfor 30 ha_vip_on "$p" || echo "  $p does not hold the VIPs"
  ha_waitfor 10 ready "$b" || echo "  $b not ready: $(ha_ctl "$b" ha ready 2>&1)"
  sleep 3 # conntrackd's commit and a few hundred messages on every flow
  for f in $ELECTED $UNELECTED; do echo "  flow $f: $(ha_status $f)"; done | lab_ev
  check "cycle $c: every elected flow runs on (same external endpoint, no reset)" ha_allrunning $ELECTED
  check "cycle $c: ... and exchanges messages now (none stalled)" progressing
  ha_ctl "$p" list --json >"$r.list$c" 2>&1
  check "cycle $c: the primary $p lists every elected mapping" \
    lab_eq elected "$(elected_list "$r.list$c")" "$WANT_LIST"
  check "cycle $c: the primary $p accepts a new connection to the elected MAP on the first SYN" new_conn
  # (besides them, the caches hold new_conn's connections: elected too, through the MAP)
  check "cycle $c: $p's conntrackd internal cache holds every elected flow and no unelected one ($UNELECTED)" \
    ha_waitfor 5 cache_ok "$p" -i
  check "cycle $c: $b's conntrackd external cache holds every elected flow and no unelected one" \
    ha_waitfor 5 cache_ok "$b" -e
  echo "    caches: $p -i $(ha_ctd "$p" -i 2>/dev/null | grep -c '^[a-z]') entries, $b -e $(ha_ctd "$b" -e 2>/dev/null | grep -c '^[a-z]') entries"
  check "cycle $c: the backup $b is ready to take over (pcpctl ha ready)" ready "$b"
  {
    printf 'cycle %s gaps:' "$c"
    for f in $ELECTED; do printf ' %s=%ss' "$f" "$(ha_maxgap $f)"; done
    echo
  } | tee -a "$REPORT"
  ha_gap_reset $ELECTED
}

# alone C P: during cycle C's outage P serves alone: the elected flows run on through P, which
# lists the elected mappings and accepts a new connection on the first SYN.
alone() {
  local c=$1 p=$2 f
  sleep 3
  for f in $ELECTED; do echo "  flow $f: $(ha_status $f)"; done | lab_ev
  check "cycle $c (outage): every elected flow runs on through $p" ha_allrunning $ELECTED
  check "cycle $c (outage): ... and exchanges messages now (none stalled)" progressing
  ha_ctl "$p" list --json >"$r.alone$c" 2>&1
  check "cycle $c (outage): the new primary $p lists every elected mapping" \
    lab_eq elected "$(elected_list "$r.alone$c")" "$WANT_LIST"
  check "cycle $c (outage): $p accepts a new connection to the elected MAP on the first SYN" new_conn
  {
    printf 'cycle %s outage gaps:' "$c"
    for f in $ELECTED; do printf ' %s=%ss' "$f" "$(ha_maxgap $f)"; done
    echo
  } | tee -a "$REPORT"
  ha_gap_reset $ELECTED
}

# die R: a power cut. Every process of R killed, its links down, its VIPs, connections and
# nftables gone (as after a reboot), keepalived's role file with them (it lives in /run).
die() {
  local d p c pids=()
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    c=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    [[ $c == *"$LAB_DIR/$1/"* ]] && pids+=("$p")
  done
  # All stopped first: keepalived's VRRP child must not see its parent die and run notify_stop.
  [ ${#pids[@]} -gt 0 ] && kill -STOP "${pids[@]}" 2>/dev/null
  [ ${#pids[@]} -gt 0 ] && kill -KILL "${pids[@]}" 2>/dev/null
  T_DEAD=$(now) # failover times count from here (the scan above is the lab's, not the router's)
  ha_x "$1" ip link set lan0 down
  ha_x "$1" ip link set wan0 down
  ha_x "$1" ip link set sync0 down
  ha_x "$1" ip addr flush dev lan0 scope global
  ha_x "$1" ip addr flush dev wan0 scope global
  ha_x "$1" nft flush ruleset
  ha_x "$1" conntrack -F >/dev/null 2>&1
  rm -f "$LAB_DIR/$1/role" "$LAB_DIR/$1/ctl.sock" "$LAB_DIR/$1/check.last"
  [ -f "$LAB_DIR/$1/check.log" ] && mv "$LAB_DIR/$1/check.log" "$LAB_DIR/$1/check.log.$(date +%s%N)"
  : >>"$LAB_DIR/$1/notify.log"
  DIE_NOTIFY_LINES=$(wc -l <"$LAB_DIR/$1/notify.log")
}
# guarded R: since R came back, its track script passed (check rc=0) before its notify primary
# began: it did not take the VIPs before it held the elected set.
guarded() {
  local ok prim
  ok=$(awk '/check rc=0/ {print $1; exit}' "$LAB_DIR/$1/check.log" 2>/dev/null)
  prim=$(tail -n +"$((DIE_NOTIFY_LINES + 1))" "$LAB_DIR/$1/notify.log" | awk '/primary begin/ {print $1; exit}')
  echo "    $1: first passing check at ${ok:-never}, notify primary began at ${prim:-never}"
  [ -n "$ok" ] && [ -n "$prim" ] && [[ $ok < $prim ]]
}
# boot R: the router comes back: addresses, links, rulesets, then conntrackd, pcpd, keepalived.
boot() {
  local i=2
  [ "$1" = r2 ] && i=3
  ha_x "$1" ip addr add 192.0.2.$i/24 dev lan0
  ha_x "$1" ip addr add 203.0.113.$i/24 dev wan0
  ha_x "$1" ip link set lan0 up
  ha_x "$1" ip link set wan0 up
  ha_x "$1" ip link set sync0 up
  ha_rules "$1"
  fill_router "$1"
  router_start "$1"
}
failover_from() { # failover_from T0 R: seconds from T0 until R holds the VIPs
  ha_waitfor 30 ha_vip_on "$2"
  python3 -c "import sys,time; print('%.2f' % (time.time() - float(sys.argv[1])))" "$1"
}
now() { date +%s.%N; }

# ---- mappings and flows --------------------------------------------------------------------------
ha_waitfor 10 ready r2 || echo "  r2 not ready: $(ha_ctl r2 ha ready 2>&1)"
N1=$(lab_nonce) N2=$(lab_nonce) N3=$(lab_nonce) N5=$(lab_nonce) N6=$(lab_nonce)
pcpmap map-mt map -p tcp -i 8001 -l 600 -n "$N1"
lab_pc "$r.map-mt-u" -s "$HA_VIP_LAN" map -p tcp -i 8002 -l 600 -n "$N2"
pcpmap map-mu map -p udp -i 8003 -l 600 -n "$N3"
pcpmap peer-pt peer -p tcp -i 40001 -r 203.0.113.100:7001 -l 600 -n "$N5"
pcpmap peer-pu peer -p udp -i 41001 -r 203.0.113.100:7001 -l 600 -n "$N6"
E1=$(lab_json "$r.map-mt" external_port)
E2=$(lab_json "$r.map-mt-u" external_port)
E3=$(lab_json "$r.map-mu" external_port)
check "four mappings elected on r1 (the backup acknowledged each)" \
  eval '[ "$(lab_json "$r.map-mt" options.checkpoint)$(lab_json "$r.map-mu" options.checkpoint)$(lab_json "$r.peer-pt" options.checkpoint)$(lab_json "$r.peer-pu" options.checkpoint)" = truetruetruetrue ]'
ha_serve "$HA_SRV" 7001
ha_serve "$HA_CLI" 8001 8002 8003
sleep 0.5
HA_FLOW_INTERVAL=0.01 ha_flow 40001 "$HA_CLI" tcp 203.0.113.100 7001 40001
HA_FLOW_INTERVAL=0.01 ha_flow 41001 "$HA_CLI" udp 203.0.113.100 7001 41001
HA_FLOW_INTERVAL=0.01 ha_flow 50001 "$HA_SRV" tcp "$HA_VIP_WAN" "$E1" 50001
HA_FLOW_INTERVAL=0.01 ha_flow 51001 "$HA_SRV" udp "$HA_VIP_WAN" "$E3" 51001
ha_waitfor 8 ha_allrunning $ELECTED
unelected_flows 0
settled 0 r1 r2

# ---- 1: the primary dies and returns -------------------------------------------------------------
lab_log "cycle 1: r1 dies"
unelected_flows 1
die r1
t0=$T_DEAD
echo "cycle 1 failover: VIPs on r2 after $(failover_from "$t0" r2) s, first PCP answer after $(first_answer "$t0") s" |
  tee -a "$REPORT"
check "cycle 1: every unelected flow breaks at the failover" ha_waitfor 20 ha_allbroken $UNELECTED
alone 1 r2
lab_log "cycle 1: r1 returns"
n=$(nprimary r2)
t0=$(now)
boot r1
echo "cycle 1 failback: VIPs on r1 after $(failover_from "$t0" r1) s (boot included)" | tee -a "$REPORT"
check "cycle 1: r1 took the VIPs back only once ready (its check passed before its notify primary)" guarded r1
settled 1 r1 r2

# ---- 2: planned switchover -------------------------------------------------------------------------
lab_log "cycle 2: keepalived stopped on r1"
unelected_flows 2
t0=$(now)
lab_kill "$HA_KA_PID_r1" TERM
echo "cycle 2 switchover: VIPs on r2 after $(failover_from "$t0" r2) s, first PCP answer after $(first_answer "$t0") s" |
  tee -a "$REPORT"
check "cycle 2: keepalived's notify_stop ran pcpd-ha-notify stop on r1 (pcpd is a backup now)" \
  ha_waitfor 5 notified r1 stop 1
check "cycle 2: r1's pcpd follows (role backup)" \
  eval 'ha_ctl r1 stats --format prometheus | grep -q "^pcpd_ha_role{role=\"backup\"} 1"'
alone 2 r2
lab_log "cycle 2: keepalived started again on r1"
t0=$(now)
ha_ka_start r1
echo "cycle 2 back: VIPs on r1 after $(failover_from "$t0" r1) s" | tee -a "$REPORT"
settled 2 r1 r2

# ---- 3: the primary dies while the client refreshes on the backup ------------------------------------
lab_log "cycle 3: r1 dies, the client refreshes its mappings on r2"
unelected_flows 3
die r1
t0=$T_DEAD
echo "cycle 3 failover: VIPs on r2 after $(failover_from "$t0" r2) s, first PCP answer after $(first_answer "$t0") s" |
  tee -a "$REPORT"
alone 3 r2
ha_waitfor 10 eval '! ha_ctl r2 stats --format prometheus | grep -q "^pcpd_ha_peer_up 1"'
check "cycle 3: the refreshes on r2 succeed" refresh_all c3
check "cycle 3: ... without CHECKPOINT_REQUIRED (no peer can hold it, RFC 7767 §3.2)" echoed c3 ""
ha_ctl r2 stats --format prometheus >"$r.stats3" 2>&1
grep -E '^pcpd_checkpoint_(deferred|refused_total\{reason="peer_unavailable"\}|reelected)' "$r.stats3" | lab_ev
check "cycle 3: r2 keeps the four wishes (pcpd_checkpoint_deferred 4)" \
  grep -q '^pcpd_checkpoint_deferred 4$' "$r.stats3"
lab_log "cycle 3: r1 returns and preempts"
t0=$(now)
boot r1
echo "cycle 3 failback: VIPs on r1 after $(failover_from "$t0" r1) s (boot included)" | tee -a "$REPORT"
check "cycle 3: r1 took the VIPs back only once ready" guarded r1
check "cycle 3: r2 elected the four again once r1's pcpd was back (checkpoint.reelected)" \
  grep -q 'checkpoint.reelected.*mappings=4' "$LAB_DIR/r2/pcpd.log"
settled 3 r1 r2
check "cycle 3: the next refresh on r1 echoes the option again" eval 'refresh_all c3b && echoed c3b true'

# ---- 4: the backup's pcpd and conntrackd restarted ----------------------------------------------------
lab_log "cycle 4: r2's pcpd and conntrackd restarted while r1 serves"
unelected_flows 4
lab_kill "$HA_PCPD_PID_r2" TERM
ha_ctd_stop r2
ha_ctd_start r2
ha_pcpd_start r2 || lab_die "pcpd did not start again on r2"
check "cycle 4: r2's pcpd took the role keepalived last told (role_file: backup)" \
  eval 'grep -q "ha.role.*to=backup.*source=" "$LAB_DIR/r2/pcpd.log"'
check "cycle 4: r1 kept the VIPs" ha_vip_on r1
ha_ctl r2 list --json >"$r.list4b" 2>&1
settled 4 r1 r2
check "cycle 4: the restarted backup holds every elected mapping" \
  eval 'ha_ctl r2 list --json >"$r.list4b" && [ "$(elected_list "$r.list4b")" = "$WANT_LIST" ]'

# ---- 5: both pcpd restarted in turn ---------------------------------------------------------------------
lab_log "cycle 5: r2's pcpd restarted, then r1's"
unelected_flows 5
lab_kill "$HA_PCPD_PID_r2" TERM
ha_pcpd_start r2 || lab_die "pcpd did not start again on r2"
ha_waitfor 10 ready r2 || echo "  r2 not ready: $(ha_ctl r2 ha ready 2>&1)"
lab_kill "$HA_PCPD_PID_r1" TERM
ha_pcpd_start r1 || lab_die "pcpd did not start again on r1"
check "cycle 5: r1's pcpd is primary again without a keepalived notify (role_file)" \
  eval 'ha_ctl r1 stats --format prometheus | grep -q "^pcpd_ha_role{role=\"primary\"} 1"'
check "cycle 5: r1 kept the VIPs (a pcpd restart is no failover)" ha_vip_on r1
peer_up1() { ha_ctl r1 stats --format prometheus | grep -q '^pcpd_ha_peer_up 1'; }
ha_waitfor 10 peer_up1
check "cycle 5: a refresh on r1 is honoured again (the option echoed)" eval 'refresh_all c5 && echoed c5 true'
settled 5 r1 r2
check "cycle 5: no unelected flow broke without a failover" ha_allrunning $UNELECTED

echo "  r1 notify log:"
lab_ev <"$LAB_DIR/r1/notify.log"
echo "  r2 notify log:"
lab_ev <"$LAB_DIR/r2/notify.log"
echo "  check transitions r1: $(tr '\n' ';' <"$LAB_DIR/r1/check.log" 2>/dev/null) r2: $(tr '\n' ';' <"$LAB_DIR/r2/check.log" 2>/dev/null)"
check "no pcpctl or conntrackd step failed in any notify run" \
  eval '! grep -Eq "^pcpctl:|rc=[1-9]|-> exit [1-9]" "$LAB_DIR/r1/notify.log" "$LAB_DIR/r2/notify.log"'
echo "summary (HA_CT_FILL=${HA_CT_FILL:-0}):"
lab_ev <"$REPORT"
[ -n "${HA_CYCLES_REPORT:-}" ] && cp "$REPORT" "$HA_CYCLES_REPORT"
lab_finish
