#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ha_checkpoint.sh: CHECKPOINT_REQUIRED (RFC 7767) acceptance test on two routers.
# Lab (scripts/ha-lab.sh): client, r1 + r2 (keepalived VRRP on shared LAN/WAN bridges, conntrackd
# FTFW on the sync link 198.51.100.0/30, the same rulesets and pcpd on both), remote host.
# Mappings are created on the primary (r1) with pcpc; the standby's pcpd does not get them (later
# issue), so what must survive a failover is the established connections conntrackd carries.
# Requirements: R-CKPT-1..5 (option honoured/echoed, left out when not asked, late election and
# un-election by refresh), R-CKPT-6 (elected state reaches the backup and survives failover and
# failback), R-CKPT-7 (per-client cap: the N+1th request is served without the option).
# Flow lists ($ELECTED, $UNELECTED) are space-separated ids, split on purpose.
# shellcheck disable=SC2086,SC2016,SC2034
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/ha-lab.sh"

QUOTA=6 # [checkpoint] max_per_client
HA_CHECKPOINT_CONF="enabled = true
max_per_client = $QUOTA"
ha_init ha_checkpoint
ha_up
r=$LAB_DIR/pc

lab_log "conntrackd and pcpd, then keepalived (ha/keepalived.conf: after conntrackd), on both routers"
ha_ctd_start r1
ha_ctd_start r2
ha_pcpd_start r1 || lab_die "pcpd did not start on r1"
ha_pcpd_start r2 || lab_die "pcpd did not start on r2"
ha_ka_start r1
ha_ka_start r2
ha_waitfor 15 ha_vip_on r1 || lab_die "r1 never became VRRP master"
prim1() { grep -q 'primary end' "$LAB_DIR/r1/notify.log" 2>/dev/null; }
ha_waitfor 5 prim1
lab_log "r1 is VRRP master (has $HA_VIP_LAN); its notify log:"
lab_ev <"$LAB_DIR/r1/notify.log"
check "pcpd on r1 and r2 serve their own control sockets ([daemon] control_socket)" \
  eval 'ha_ctl r1 stats --json >/dev/null && ha_ctl r2 stats --json >/dev/null'
echo "  r1: nft list table inet pcpd (ct event / ct mark rules):"
ha_x r1 nft list table inet pcpd | grep -E 'ct event set|ct mark set' | lab_ev
check "R-CKPT-6 pcpd.nft loads the election/event-mask rules on both routers (ct event set)" \
  eval '[ "$(ha_x r1 nft list table inet pcpd | grep -c "ct event set")" -ge 2 ] &&
        [ "$(ha_x r2 nft list table inet pcpd | grep -c "ct event set")" -ge 2 ]'
check "R-CKPT-6 nf_conntrack_events = 1 in both routers (ha/90-pcpd-conntrack.conf)" \
  eval '[ "$(ha_x r1 sysctl -n net.netfilter.nf_conntrack_events)" = 1 ] &&
        [ "$(ha_x r2 sysctl -n net.netfilter.nf_conntrack_events)" = 1 ]'

# A busy router (HA_CT_FILL=N, test ha_checkpoint_busy): N unrelated conntrack entries on each
# router (bench/ct_fill.cpp), created with events off, as pcpd.nft's event mask keeps a real
# router's unelected flows silent. Everything below then runs beside them.
if [ -n "${HA_CT_FILL:-}" ]; then
  fill=${PCPD_BUILD_DIR:-$LAB_SRC/build}/bench/pcpd-ct-fill
  [ -x "$fill" ] || lab_die "pcpd-ct-fill not built at $fill"
  for rr in r1 r2; do
    ha_x "$rr" sysctl -qw net.netfilter.nf_conntrack_events=0
    ha_x "$rr" "$fill" "$HA_CT_FILL" --timeout 900 | lab_ev
    ha_x "$rr" sysctl -qw net.netfilter.nf_conntrack_events=1
  done
  check "busy routers: r1 and r2 each hold at least $HA_CT_FILL conntrack entries" \
    eval '[ "$(ha_x r1 conntrack -C)" -ge "$HA_CT_FILL" ] && [ "$(ha_x r2 conntrack -C)" -ge "$HA_CT_FILL" ]'
fi

# Everything the kernel of r1 reports to ctnetlink listeners, from before the first flow.
lab_spawn "$HA_R1" "$LAB_DIR/r1/events.txt" timeout "$LAB_WATCHDOG" conntrack -E -o timestamp
sleep 0.3

###########################################################################
lab_log "mappings on the primary: MAP and PEER, TCP and UDP, with and without --checkpoint"
# pcpmap NAME CKPT(yes|no) ARGS...: one pcpc request; checks SUCCESS and the option echo.
pcpmap() {
  local name=$1 ck=$2 want=""
  shift 2
  [ "$ck" = yes ] && set -- "$@" --checkpoint && want=true
  check "R-CKPT-1 pcpc $name exits 0" lab_pc "$r.$name" -s "$HA_VIP_LAN" "$@"
  check "R-CKPT-4 $name result SUCCESS" lab_eq result "$(lab_json "$r.$name" result)" SUCCESS
  if [ "$ck" = yes ]; then
    check "R-CKPT-4 $name: CHECKPOINT_REQUIRED echoed (elected)" \
      lab_eq options.checkpoint "$(lab_json "$r.$name" options.checkpoint)" "$want"
  else
    check "R-CKPT-3 $name: no CHECKPOINT_REQUIRED in the response" \
      lab_eq options.checkpoint "$(lab_json "$r.$name" options.checkpoint)" ""
  fi
}
N_LATE=$(lab_nonce)
N_UNEL=$(lab_nonce)
pcpmap map-tcp-e yes map -p tcp -i 8001 -e 8001 -l 600
pcpmap map-tcp-u no map -p tcp -i 8002 -e 8002 -l 600
pcpmap map-udp-e yes map -p udp -i 8003 -e 8003 -l 600
pcpmap map-udp-u no map -p udp -i 8004 -e 8004 -l 600
pcpmap peer-tcp-e yes peer -p tcp -i 40001 -r 203.0.113.100:7001 -l 600
pcpmap peer-tcp-u no peer -p tcp -i 40101 -r 203.0.113.100:7001 -l 600
pcpmap peer-late no peer -p tcp -i 40002 -r 203.0.113.100:7001 -l 600 -n "$N_LATE"
pcpmap peer-unel yes peer -p tcp -i 40003 -r 203.0.113.100:7001 -l 600 -n "$N_UNEL"
pcpmap peer-udp-e yes peer -p udp -i 41001 -r 203.0.113.100:7001 -l 600
pcpmap peer-udp-u no peer -p udp -i 41101 -r 203.0.113.100:7001 -l 600
E1=$(lab_json "$r.map-tcp-e" external_port)
E2=$(lab_json "$r.map-tcp-u" external_port)
E3=$(lab_json "$r.map-udp-e" external_port)
E4=$(lab_json "$r.map-udp-u" external_port)
ha_ctl r1 list --json >"$r.list" 2>&1
elected_list() { python3 -c 'import json,sys
for m in json.load(open(sys.argv[1])):
    if m.get("checkpoint"): print(m["kind"], m["protocol_number"], m["internal"])' "$1" 2>/dev/null | sort | tr '\n' ';'; }
check "R-CKPT-4 pcpctl list on r1 marks exactly the 5 elected mappings" \
  lab_eq elected "$(elected_list "$r.list")" \
  "map 17 192.0.2.10:8003;map 6 192.0.2.10:8001;peer 17 192.0.2.10:41001;peer 6 192.0.2.10:40001;peer 6 192.0.2.10:40003;"

###########################################################################
lab_log "R-CKPT-7 quota: client 192.0.2.11, [checkpoint] max_per_client = $QUOTA"
honoured=0
for i in $(seq 1 $((QUOTA + 1))); do
  lab_pcpc --json --source 192.0.2.11 -s "$HA_VIP_LAN" map -p tcp -i $((9000 + i)) -l 600 --checkpoint \
    >"$r.q$i" 2>&1
  res=$(lab_json "$r.q$i" result)
  ck=$(lab_json "$r.q$i" options.checkpoint)
  echo "  request $i: result=$res checkpoint=${ck:-absent}"
  [ "$i" -le "$QUOTA" ] && [ "$res" = SUCCESS ] && [ "$ck" = true ] && honoured=$((honoured + 1))
done
check "R-CKPT-7 the first $QUOTA requests with --checkpoint are honoured" lab_eq honoured "$honoured" "$QUOTA"
lab_ev <"$r.q$((QUOTA + 1))"
check "R-CKPT-4 request $((QUOTA + 1)) (over the cap) is still served: SUCCESS" \
  lab_eq result "$(lab_json "$r.q$((QUOTA + 1))" result)" SUCCESS
check "R-CKPT-7 request $((QUOTA + 1)) (over the cap) has no checkpoint in options" \
  lab_eq options.checkpoint "$(lab_json "$r.q$((QUOTA + 1))" options.checkpoint)" ""
ha_ctl r1 stats --format prometheus >"$r.stats" 2>&1
grep -i checkpoint "$r.stats" | lab_ev
check "R-CKPT-7 pcpctl stats counts exactly 1 refusal for the per-client cap" \
  lab_eq client_cap "$(awk '/^pcpd_checkpoint_refused_total\{reason="client_cap"\}/ {print $2}' "$r.stats")" 1

###########################################################################
lab_log "long-lived flows (a message every 200 ms)"
ha_serve "$HA_SRV" 7001
ha_serve "$HA_CLI" 8001 8002 8003 8004
sleep 0.5
ELECTED="40001 40003 41001 50001 51001" # PEER tcp, PEER tcp (un-elected later), PEER udp, MAP tcp, MAP udp
UNELECTED="40101 40002 41101 50101 51101"
ha_flow 40001 "$HA_CLI" tcp 203.0.113.100 7001 40001
ha_flow 40101 "$HA_CLI" tcp 203.0.113.100 7001 40101
ha_flow 40002 "$HA_CLI" tcp 203.0.113.100 7001 40002
ha_flow 40003 "$HA_CLI" tcp 203.0.113.100 7001 40003
ha_flow 41001 "$HA_CLI" udp 203.0.113.100 7001 41001
ha_flow 41101 "$HA_CLI" udp 203.0.113.100 7001 41101
ha_flow 50001 "$HA_SRV" tcp "$HA_VIP_WAN" "$E1" 50001
ha_flow 50101 "$HA_SRV" tcp "$HA_VIP_WAN" "$E2" 50101
ha_flow 51001 "$HA_SRV" udp "$HA_VIP_WAN" "$E3" 51001
ha_flow 51101 "$HA_SRV" udp "$HA_VIP_WAN" "$E4" 51101
ha_waitfor 8 ha_allrunning $ELECTED $UNELECTED
sleep 1
for f in $ELECTED $UNELECTED; do echo "  flow $f: $(ha_status $f)"; done | lab_ev
check "all 10 flows exchange data through r1" ha_allrunning $ELECTED $UNELECTED
check "R-PEER-7 PEER flows leave with the PEER's external port (not the random SNAT)" \
  eval 'grep -q "ep=203.0.113.1:$(lab_json "$r.peer-tcp-e" external_port) " "$HA_APP/40001.st" &&
        grep -q "ep=203.0.113.1:$(lab_json "$r.peer-udp-e" external_port) " "$HA_APP/41001.st"'

nev() { grep -c " sport=$1 " "$LAB_DIR/r1/events.txt"; }
echo "  conntrack -E lines on r1 per flow:" "$(for f in $ELECTED $UNELECTED; do printf '%s=%s ' "$f" "$(nev "$f")"; done)"
noevents() {
  local f
  for f in $UNELECTED; do [ "$(nev "$f")" = 0 ] || return 1; done
  for f in $ELECTED; do grep -q "NEW.* sport=$f " "$LAB_DIR/r1/events.txt" || return 1; done
}
check "R-CKPT-6 r1 kernel: 0 conntrack events for each of the 5 unelected flows, NEW for the 5 elected" noevents
sleep 0.5
echo "  r1 conntrackd -i:"
ha_ctd r1 -i | lab_ev
echo "  r2 conntrackd -e:"
ha_ctd r2 -e | lab_ev
WANT=$(echo "$ELECTED" | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')
check "R-CKPT-6 r1 conntrackd -i holds exactly the elected flows" lab_eq "r1 -i sports" "$(ha_ct_sports r1 -i)" "$WANT"
check "R-CKPT-6 r2 conntrackd -e holds exactly the elected flows" lab_eq "r2 -e sports" "$(ha_ct_sports r2 -e)" "$WANT"

###########################################################################
lab_log "late election: refresh PEER 40002 with --checkpoint and the same nonce"
pcpmap peer-late-elect yes peer -p tcp -i 40002 -r 203.0.113.100:7001 -l 600 -n "$N_LATE"
check "R-CKPT-5 late election keeps the external port" \
  lab_eq external_port "$(lab_json "$r.peer-late-elect" external_port)" "$(lab_json "$r.peer-late" external_port)"
ext2() { ha_ctd r2 -e 2>/dev/null | grep " sport=$1 " | grep -q "$2"; }
check "R-CKPT-5 the established flow 40002 reaches r2's external cache (ESTABLISHED) within 3 s" \
  ha_waitfor 3 ext2 40002 ESTABLISHED
ha_ctd r2 -e | grep " sport=40002 " | lab_ev
echo "  conntrack -E lines for 40002 after election: $(nev 40002)"
check "R-CKPT-5 flow 40002 still running after its election" ha_running 40002

lab_log "un-election: refresh PEER 40003 without --checkpoint (same nonce)"
pcpmap peer-unelect no peer -p tcp -i 40003 -r 203.0.113.100:7001 -l 600 -n "$N_UNEL"
# elected bit 0x1 clear (sticky 0x2 and pcpd.nft's mapped bit 0x8 may stay)
unelected_on_r2() { ha_ctd r2 -e 2>/dev/null | grep " sport=40003 " | grep -Eq 'mark=(0|2|8|10) '; }
check "R-CKPT-5 un-election reaches r2 (its copy of 40003 loses the elected bit) within 3 s" \
  ha_waitfor 3 unelected_on_r2
ha_ctd r2 -e | grep " sport=40003 " | lab_ev
ha_ctl r1 list --json >"$r.list2" 2>&1
check "R-CKPT-5 pcpctl list: 40002 elected, 40003 not" \
  eval 'elected_list "$r.list2" | grep -q "peer 6 192.0.2.10:40002;" && ! elected_list "$r.list2" | grep -q ":40003;"'
ha_close 40003
fin_on_r2() { ha_ctd r2 -e 2>/dev/null | grep " sport=40003 " | grep -Eq 'FIN_WAIT|CLOSE_WAIT|LAST_ACK|TIME_WAIT|CLOSE'; }
check "R-CKPT-5 the un-elected flow's close still reaches r2 (FIN states)" ha_waitfor 3 fin_on_r2
ha_ctd r2 -e | grep " sport=40003 " | lab_ev
# The flow ends: its conntrack is destroyed on r1. (A natural expiry arrives only with the next
# conntrack GC pass, tens of seconds later; deleting the entry sends the same DESTROY event.)
ha_x r1 conntrack -D -p tcp --orig-src 192.0.2.10 --sport 40003 2>&1 | tail -1 | lab_ev
gone() { ! ha_ctd r2 -e 2>/dev/null | grep -q " sport=40003 " && ! ha_ctd r1 -i 2>/dev/null | grep -q " sport=40003 "; }
check "R-CKPT-5 after the un-elected flow ends no stale entry stays in r1 -i or r2 -e" ha_waitfor 5 gone
ELECTED="40001 40002 41001 50001 51001"
UNELECTED="40101 41101 50101 51101"
WANT=$(echo "$ELECTED" | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')

###########################################################################
lab_log "restart the backup's conntrackd (StartupResync on)"
ha_ctd_stop r2
ha_ctd_start r2
restored() { [ "$(ha_ct_sports r2 -e)" = "$WANT" ]; }
ha_waitfor 5 restored
ha_ctd r2 -e | lab_ev
check "R-CKPT-6 restarted backup conntrackd holds exactly the elected flows again" \
  lab_eq "r2 -e sports" "$(ha_ct_sports r2 -e)" "$WANT"

###########################################################################
# tuples FLOW: both conntrack tuples of the flow on a router (orig and reply, NAT ports included)
tuples() {
  local src=192.0.2.10 p=tcp
  case $2 in 5*) src=203.0.113.100 ;; esac
  case $2 in 41* | 51*) p=udp ;; esac
  ha_x "$1" conntrack -L -p $p --orig-src $src --sport "$2" 2>/dev/null |
    grep -o 'src=[^ ]* dst=[^ ]* sport=[0-9]* dport=[0-9]*' | tr '\n' ' '
}
declare -A T1
for f in $ELECTED; do T1[$f]=$(tuples r1 "$f"); done
lab_log "failover: r1 lan0 and wan0 down"
ha_waitfor 3 ha_allrunning $ELECTED $UNELECTED || echo "  (not all flows running before the failover)"
ha_x r1 ip link set lan0 down
ha_x r1 ip link set wan0 down
tf=$(date +%s)
ha_waitfor 10 ha_vip_on r2 && lab_log "r2 has the VIPs after $(($(date +%s) - tf)) s"
ha_waitfor 25 ha_allbroken $UNELECTED
sleep 1
for f in $ELECTED $UNELECTED; do echo "  flow $f: $(ha_status $f)"; done | lab_ev
# (an elected TCP flow pauses for the VRRP takeover plus TCP's retransmission backoff, about 3 or
# 6.5 s here; a flow counts as broken after 12 s without an echo)
echo "  r2 notify log:"
lab_ev <"$LAB_DIR/r2/notify.log"
check "R-CKPT-6 every elected flow (PEER/MAP, TCP/UDP) keeps exchanging data after the failover" \
  ha_allrunning $ELECTED
check "R-CKPT-6 every unelected flow breaks" ha_allbroken $UNELECTED
for f in $ELECTED; do
  check "R-CKPT-6 flow $f: r2's conntrack keeps r1's NAT tuples" lab_eq "$f" "$(tuples r2 "$f")" "${T1[$f]}"
done
check "R-CKPT-6 notify primary on r2 ran ha/pcpd-ha-notify: pcpd queued the re-announce (ct-touch)" \
  grep -q "primary, re-announce of marked connections queued" "$LAB_DIR/r2/notify.log"
touched_r2() { [ "$(ha_ctl r2 stats --format prometheus | awk '$1 == "pcpd_conntrack_connections_total{op=\"touch\"}" {print $2}')" = 5 ]; }
check "R-CKPT-6 r2's pcpd re-announced exactly the 5 elected connections (pcpd_conntrack_connections_total{op=touch})" \
  ha_waitfor 5 touched_r2
ext1_all() { [ "$(ha_ct_sports r1 -e)" = "$WANT" ]; }
check "R-CKPT-6 new primary re-announced the elected flows (ct-touch) to r1's external cache" ha_waitfor 5 ext1_all
ha_ctd r1 -e | lab_ev

###########################################################################
lab_log "failback: r1 links up, r1 preempts"
ha_x r1 ip link set lan0 up
ha_x r1 ip link set wan0 up
tf=$(date +%s)
ha_waitfor 15 ha_vip_on r1 && lab_log "r1 has the VIPs again after $(($(date +%s) - tf)) s"
prim2() { [ "$(grep -c 'primary end' "$LAB_DIR/r1/notify.log")" -ge 2 ]; }
ha_waitfor 5 prim2
sleep 4
for f in $ELECTED; do echo "  flow $f: $(ha_status $f)"; done | lab_ev
echo "  r1 notify log:"
lab_ev <"$LAB_DIR/r1/notify.log"
check "R-CKPT-6 every elected flow keeps exchanging data after the failback" ha_allrunning $ELECTED
check "R-CKPT-6 no pcpctl or conntrackd error in any notify run on r1 or r2" \
  eval '! grep -Eq "^pcpctl:|ERROR|rc=[1-9]" "$LAB_DIR/r1/notify.log" "$LAB_DIR/r2/notify.log"'
for f in $ELECTED; do
  check "R-CKPT-6 flow $f: after failback r1's conntrack has the original NAT tuples" \
    lab_eq "$f" "$(tuples r1 "$f")" "${T1[$f]}"
done
lab_finish
