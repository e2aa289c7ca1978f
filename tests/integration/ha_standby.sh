#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ha_standby.sh: hot standby (RFC 7767 §3, docs/design.md "Mapping state on the standby") in
# the two-router lab (scripts/ha-lab.sh): keepalived on r1 (primary) and r2, pcpd on both with an
# [ha] peer link on sync0 (198.51.100.1 <-> .2), scope "elected", ack_timeout_ms 200.
#  1. the peer link comes up; the backup answers no request; an elected MAP reaches r2's table and
#     kernel before the client hears yes, an unelected one does not;
#  2. standby pcpd killed: elected requests are answered without the option (R-CKPT-4, RFC 7767
#     §3.2), counted; a wrong-key peer and malformed datagrams are rejected, counted, change
#     nothing; an elected mapping is deleted; restarted: after the snapshot both tables are equal
#     and elected requests get the option again;
#  3. failover: the elected MAP admits a new inbound TCP connection on its first SYN, with no
#     client action; the unelected one does not; `pcpc --keep` re-creates its unelected mapping on
#     the ANNOUNCE and that one then works; the elected mapping refreshes with its old nonce and
#     keeps its external port (epoch reset: R-EPOCH-3);
#  4. the same [[static]] port forward configured on both routers: each installs its own (no
#     timeout), none is replicated, and after the failover r2's admits the first SYN.
# shellcheck disable=SC2016,SC2034,SC2154
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/ha-lab.sh"

: "${LAB_WATCHDOG:=150}"
ha_init ha_standby
ha_up
ha_peer_key
HA_PEER_CONF='ack_timeout_ms = 200'
# The operator's port forward, the same on both routers (static mappings are never replicated).
HA_STATIC_CONF='[[static]]
protocol = "tcp"
internal = "192.0.2.10:8105"
external_port = 2205
description = "nas"'
r=$LAB_DIR/pc
SRV=$HA_SRV

metric() { # metric ROUTER NAME[{labels}]: a value of pcpctl stats --format prometheus
  ha_ctl "$1" stats --format prometheus 2>/dev/null | awk -v k="$2" '$1 == k { print $2; exit }'
}
peer_up() { [ "$(metric "$1" pcpd_ha_peer_up)" = 1 ]; }
peer_down() { [ "$(metric "$1" pcpd_ha_peer_up)" = 0 ]; }
# Elected mappings of a pcpctl list --json, the fields a standby must hold (remaining left out).
elected_view() {
  python3 -c 'import json,sys
rows = []
for m in json.load(open(sys.argv[1])):
    if m.get("checkpoint"):
        rows.append(" ".join(str(m.get(k)) for k in
            ("kind","protocol","internal","external","remote","nonce","lifetime","checkpoint","filters","description")))
print(";".join(sorted(rows)))' "$1" 2>/dev/null
}
# Every mapping but the static ones (each router has its own, from its configuration).
all_view() {
  python3 -c 'import json,sys
print(";".join(sorted(" ".join(str(m.get(k)) for k in
    ("kind","protocol","internal","external","remote","nonce","lifetime","checkpoint","filters","description"))
    for m in json.load(open(sys.argv[1])) if m.get("origin") != "static")))' "$1" 2>/dev/null
}
r2_holds() { # r2_holds PORT: r2's pcpctl list has internal port PORT
  ha_ctl r2 list --json 2>/dev/null | grep -q "\"192.0.2.10:$1\""
}
nft_has_port() { ha_x "$1" nft list table inet pcpd 2>/dev/null | grep -qw "$2"; }
inbound() { # inbound PORT: a new TCP connection from the remote host to the NAT address, 1st SYN only
  ip netns exec "$SRV" timeout 5 python3 "$LAB_TOOL" connect --to "$HA_VIP_WAN" --port "$1" --timeout 0.9
}
tables_equal() {
  ha_ctl r1 list --json >"$r.l1" 2>&1 && ha_ctl r2 list --json >"$r.l2" 2>&1 &&
    [ "$(elected_view "$r.l1")" = "$(all_view "$r.l2")" ]
}

lab_log "pcpd with [ha] on both routers, then keepalived"
ha_pcpd_start r1 || lab_die "pcpd did not start on r1"
ha_pcpd_start r2 || lab_die "pcpd did not start on r2"
ha_ka_start r1
ha_ka_start r2
ha_waitfor 15 ha_vip_on r1 || lab_die "r1 never became VRRP master"
ha_waitfor 5 grep -q 'primary end' "$LAB_DIR/r1/notify.log"
ha_waitfor 5 grep -q 'backup end' "$LAB_DIR/r2/notify.log"
lab_ev <"$LAB_DIR/r1/notify.log"
lab_ev <"$LAB_DIR/r2/notify.log"
check "peer link up on r1 and r2 (pcpd_ha_peer_up 1)" ha_waitfor 6 eval 'peer_up r1 && peer_up r2'

###########################################################################
lab_log "the backup answers no request"
LAB_PCPC_TIMEOUT=2 lab_pc "$r.bk" -s 192.0.2.3 map -p tcp -i 8999 -l 600
check "backup r2 sends no answer (pcpc exit 2: no answer)" lab_eq exit "$?" 2
check "r2 counts the dropped request (pcpd_ha_requests_dropped_total >= 1)" \
  lab_ge dropped "$(metric r2 pcpd_ha_requests_dropped_total)" 1

###########################################################################
lab_log "mappings on the primary r1"
lab_listen "$HA_CLI" 8101 "$LAB_DIR/l8101.log"
lab_listen "$HA_CLI" 8102 "$LAB_DIR/l8102.log"
lab_listen "$HA_CLI" 8103 "$LAB_DIR/l8103.log"
lab_listen "$HA_CLI" 8104 "$LAB_DIR/l8104.log"
N_E1=$(lab_nonce)
N_E0=$(lab_nonce)
lab_pc "$r.e1" -s "$HA_VIP_LAN" map -p tcp -i 8101 -l 600 -n "$N_E1" --checkpoint
check "R-CKPT-4 elected MAP 8101: SUCCESS with CHECKPOINT_REQUIRED (peer acked)" \
  lab_eq result/option "$(lab_json "$r.e1" result)/$(lab_json "$r.e1" options.checkpoint)" SUCCESS/true
check "R-CKPT-6 r2 holds 8101 as soon as the client has its answer (pcpctl list)" r2_holds 8101
E1=$(lab_json "$r.e1" external_port)
check "R-CKPT-6 r2's kernel holds 8101's external port $E1 (inet pcpd)" nft_has_port r2 "$E1"
lab_pc "$r.u1" -s "$HA_VIP_LAN" map -p tcp -i 8102 -l 600
U1=$(lab_json "$r.u1" external_port)
check "R-CKPT-3 unelected MAP 8102: SUCCESS without the option" \
  lab_eq result/option "$(lab_json "$r.u1" result)/$(lab_json "$r.u1" options.checkpoint)" SUCCESS/
check_not "scope elected: r2 does not hold the unelected 8102" r2_holds 8102
lab_pc "$r.e0" -s "$HA_VIP_LAN" map -p tcp -i 8104 -l 600 -n "$N_E0" --checkpoint
check "elected MAP 8104 reaches r2" r2_holds 8104
# An unelected mapping kept by a client that listens for ANNOUNCE (re-created after failover).
lab_spawn "$HA_CLI" "$r.keep" "$PCPC_BIN" --json -s "$HA_VIP_LAN" --timeout 6 map -p tcp -i 8103 -l 600 --keep
ha_waitfor 5 grep -q '"result": *"SUCCESS"' "$r.keep"
# From that answer's line: an unsolicited ANNOUNCE (r1 repeats its start-up ANNOUNCE for a few
# seconds, R-ANN-4) may already have added an event line after it.
grep -m 1 '"result": *"SUCCESS"' "$r.keep" >"$r.keep.first"
U2=$(lab_json "$r.keep.first" external_port)
check "pcpc --keep created unelected MAP 8103 (external port $U2)" lab_ge port "${U2:-x}" 1
static_on() { # static_on ROUTER: its kernel holds tcp 2205 -> 192.0.2.10 . 8105, no timeout
  local l
  l=$(ha_x "$1" nft list map inet pcpd map4_dnat 2>/dev/null | grep -E '\. tcp \. 2205 ')
  [ -n "$l" ] && echo "$l" | grep -q 'comment "static map' && ! echo "$l" | grep -Eq 'timeout|expires'
}
static_listed_once() { [ "$(ha_ctl "$1" list 2>/dev/null | grep -c '192.0.2.10:8105')" = 1 ]; }
lab_listen "$HA_CLI" 8105 "$LAB_DIR/l8105.log"
check "[[static]] on both routers: r1's kernel holds it without a timeout" static_on r1
check "[[static]] ... and r2's (the backup installs its own)" static_on r2
check "[[static]] ... each router lists it once (not replicated on top)" \
  eval 'static_listed_once r1 && static_listed_once r2'
check "before failover: inbound TCP to the static 2205 through r1" inbound 2205
check "before failover: inbound TCP to the elected 8101 ($E1) through r1" inbound "$E1"
check "before failover: inbound TCP to the unelected 8102 ($U1) through r1" inbound "$U1"

###########################################################################
lab_log "standby pcpd killed (SIGKILL)"
lab_kill "$HA_PCPD_PID_r2" KILL
t0=$(date +%s%N)
lab_pc "$r.slow" -s "$HA_VIP_LAN" map -p tcp -i 8110 -l 600 --checkpoint
dt=$((($(date +%s%N) - t0) / 1000000))
echo "    answered in ${dt} ms (includes pcpc start-up)"
check "RFC 7767 §3.2 peer silent: answered SUCCESS without the option after the bound" \
  lab_eq result/option "$(lab_json "$r.slow" result)/$(lab_json "$r.slow" options.checkpoint)" SUCCESS/
check "the missed ack is counted (pcpd_ha_checkpoint_waits_total{outcome=\"timeout\"} >= 1)" \
  lab_ge timeouts "$(metric r1 'pcpd_ha_checkpoint_waits_total{outcome="timeout"}')" 1
check "r1 notices the peer is down (pcpd_ha_peer_up 0 within 6 s)" ha_waitfor 6 peer_down r1
N_8111=$(lab_nonce)
lab_pc "$r.down" -s "$HA_VIP_LAN" map -p tcp -i 8111 -l 600 -n "$N_8111" --checkpoint
check "R-CKPT-4 peer down: elected request answered SUCCESS without the option" \
  lab_eq result/option "$(lab_json "$r.down" result)/$(lab_json "$r.down" options.checkpoint)" SUCCESS/
check "counted (pcpd_checkpoint_refused_total{reason=\"peer_unavailable\"} >= 1)" \
  lab_ge refused "$(metric r1 'pcpd_checkpoint_refused_total{reason="peer_unavailable"}')" 1
check "logged (ha.checkpoint_not_honoured / ha.peer_down in r1's log)" \
  eval 'grep -q ha.checkpoint_not_honoured "$LAB_DIR/r1/pcpd.log" && grep -q ha.peer_down "$LAB_DIR/r1/pcpd.log"'
lab_pc "$r.del" -s "$HA_VIP_LAN" map -p tcp -i 8104 -l 0 -n "$N_E0"
check "elected MAP 8104 deleted on r1 while the standby is away" lab_eq result "$(lab_json "$r.del" result)" SUCCESS
ha_ctl r1 list --json >"$r.before" 2>&1

lab_log "key file checks: pcpd refuses to start, naming the file"
(umask 077 && printf 'too-short' >"$LAB_DIR/short.key")
cp "$HA_KEY" "$LAB_DIR/open.key" && chmod 644 "$LAB_DIR/open.key"
for k in open short missing; do
  if HA_KEY_FILE=$LAB_DIR/$k.key ha_pcpd_start r2 >/dev/null 2>&1; then
    check "key file $k.key refused" false
    lab_kill "$HA_PCPD_PID_r2" TERM
  else
    check "key file $k.key refused at start, the message names it" \
      grep -q "ha.setup_failed.*$LAB_DIR/$k.key" "$LAB_DIR/r2/pcpd.log"
    grep ha.setup_failed "$LAB_DIR/r2/pcpd.log" | lab_ev
  fi
done

lab_log "a peer with the wrong key on r2's address"
(umask 077 && head -c 32 /dev/urandom | base64 >"$LAB_DIR/wrong.key")
HA_KEY_FILE=$LAB_DIR/wrong.key ha_pcpd_start r2 || lab_die "wrong-key pcpd did not start"
WRONG=$HA_PCPD_PID_r2
rej() { metric r1 "pcpd_ha_rejected_total{reason=\"$1\"}"; }
hmac_rejected() { [ "$(rej bad_hmac)" -ge 2 ] 2>/dev/null; }
check "r1 rejects the wrong-key peer's datagrams (pcpd_ha_rejected_total{reason=\"bad_hmac\"} >= 2)" \
  ha_waitfor 5 hmac_rejected
check "logged (ha.rejected reason=bad_hmac in r1's log)" grep -q 'ha.rejected.*bad_hmac' "$LAB_DIR/r1/pcpd.log"
check "the peer stays down on r1" peer_down r1
lab_kill "$WRONG" TERM
lab_log "malformed, wrong-version and truncated datagrams from r2's sync address"
ha_x r2 python3 - <<'EOF'
import os, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.2", 5352))
def hdr(version):  # 44-byte header (Hello), then a 32-byte "HMAC": 76 bytes
    return b"PCPH" + bytes([version, 1, 0, 1]) + struct.pack(">HH", 76, 0) + os.urandom(32)
for d in (hdr(9) + os.urandom(32),         # another protocol version
          b"PCPH\x01",                      # truncated
          hdr(1) + os.urandom(32),         # well framed, forged HMAC
          b"XXXX" + os.urandom(72)):        # not ours at all
    s.sendto(d, ("198.51.100.1", 5352))
EOF
sleep 0.5
ha_ctl r1 stats --format prometheus | grep pcpd_ha_rejected_total | lab_ev
check "version mismatch counted" lab_ge bad_version "$(rej bad_version)" 1
check "truncated datagram counted" lab_ge truncated "$(rej truncated)" 1
check "foreign datagram counted" lab_ge bad_magic "$(rej bad_magic)" 1
check "forged HMAC counted (wrong-key datagrams + 1)" lab_ge bad_hmac "$(rej bad_hmac)" 3
ha_ctl r1 list --json >"$r.after" 2>&1
check "bad peer input changed nothing in r1's table" lab_eq table "$(all_view "$r.after")" "$(all_view "$r.before")"
check "r1 still sees no peer" peer_down r1

lab_log "standby pcpd restarted (its kernel still holds 8101 and the deleted 8104)"
ha_pcpd_start r2 || lab_die "pcpd did not restart on r2"
ha_ctl r2 ha backup | lab_ev # what keepalived's notify said before the restart
check "peer link up again" ha_waitfor 8 eval 'peer_up r1 && peer_up r2'
check "after the snapshot: r2's pcpctl list --json equals r1's elected mappings" ha_waitfor 5 tables_equal
echo "  r1 elected: $(elected_view "$r.l1")"
echo "  r2 all:     $(all_view "$r.l2")"
check_not "the mapping deleted meanwhile (8104) is gone from r2" r2_holds 8104
lab_pc "$r.back" -s "$HA_VIP_LAN" map -p tcp -i 8111 -l 600 -n "$N_8111" --checkpoint
check "peer back: the elected request gets CHECKPOINT_REQUIRED again" \
  lab_eq result/option "$(lab_json "$r.back" result)/$(lab_json "$r.back" options.checkpoint)" SUCCESS/true
check "and r2 holds it" r2_holds 8111

###########################################################################
lab_log "failover: r1 lan0 and wan0 down"
KEEP_AT=$(wc -l <"$r.keep") # pcpc --keep events from here on are the failover's
keep_new() { tail -n +"$((KEEP_AT + 1))" "$r.keep"; }
keep_saw() { keep_new | grep -q "\"event\": *\"$1\""; }
ha_x r1 ip link set lan0 down
ha_x r1 ip link set wan0 down
tf=$(date +%s)
ha_waitfor 10 ha_vip_on r2 && lab_log "r2 has the VIPs after $(($(date +%s) - tf)) s"
ha_waitfor 5 grep -q 'primary end' "$LAB_DIR/r2/notify.log"
lab_ev <"$LAB_DIR/r2/notify.log"
check "elected MAP 8101 admits a new inbound TCP connection on its first SYN via r2, no client action" inbound "$E1"
check_not "unelected MAP 8102 (client silent) does not" inbound "$U1"
check "[[static]] 2205 admits a new inbound TCP connection on its first SYN via r2" inbound 2205
check "[[static]] r2 refused no replicated change (pcpd_ha_link_total install_errors 0)" \
  lab_eq install_errors "$(metric r2 'pcpd_ha_link_total{what="install_errors"}')" 0
check "R-EPOCH-3 r2 reset its epoch on promotion (state incomplete: scope elected)" \
  grep -q 'epoch.reset.*ha_promotion_state_incomplete' "$LAB_DIR/r2/pcpd.log"
check "pcpc --keep heard r2's unsolicited ANNOUNCE (from the VRRP address)" ha_waitfor 10 keep_saw announce
check "pcpc --keep re-created the unelected MAP 8103 after it" ha_waitfor 15 keep_saw recreate
keep_new | lab_ev
U2B=$(keep_new | grep '"event": *"recreate"' | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["external_port"])' 2>/dev/null)
check "after the re-map, inbound TCP to 8103 ($U2B) works via r2" inbound "${U2B:-0}"
lab_pc "$r.e1b" -s "$HA_VIP_LAN" map -p tcp -i 8101 -l 600 -n "$N_E1" --checkpoint
check "elected 8101 refreshes with its old nonce on r2 and keeps external port $E1" \
  lab_eq result/port "$(lab_json "$r.e1b" result)/$(lab_json "$r.e1b" external_port)" "SUCCESS/$E1"

lab_finish
