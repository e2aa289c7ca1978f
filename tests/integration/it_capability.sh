#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_capability.sh: the CAPABILITY option (draft-boucadair-hops-capability-discovery-00) between
# the real pcpd and pcpc. pcpc learns the configured set through MAP and ANNOUNCE requests; a MAP
# for a protocol outside the set gets UNSUPP_PROTOCOL with the set; after the configuration gains
# SCTP and pcpd gets SIGHUP, a running `pcpc listen` prints the new set within a second.
# Requirements: R-CAP-1, R-CAP-2, R-CAP-4, R-CAP-7, R-CAP-8.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_capability
lab_up
conf=$LAB_DIR/pcpd.conf
r=$LAB_DIR/r

# lab_config knows the standard tables; [capability] is appended. One announcement copy per
# round, so the start-up round is over before the listener starts and the reload round is the
# only thing it can hear.
write_conf() {  # write_conf PROTOCOLS NAMES (TOML arrays)
  lab_config "$conf" "mappings.protocols=$1" announce.copies=1
  printf '[capability]\nnames = %s\n' "$2" >>"$conf"
}
write_conf '["tcp", "udp"]' '["nat44", "ipv6-firewall", "tcp", "udp"]'
lab_pcpd_start "$conf"
old='["nat44", "ipv6-firewall", "tcp", "udp"]'            # bit order, as pcpc prints them
new='["nat44", "ipv6-firewall", "tcp", "udp", "sctp"]'

lab_log "R-CAP-1: MAP and ANNOUNCE requests with --capabilities"
check "R-CAP-1 pcpc map --capabilities exits 0" \
  lab_pc "$r.map" -s 192.0.2.1 map -p tcp -i 8080 -l 600 --capabilities
check "R-CAP-4 MAP response carries the configured set" \
  lab_eq capabilities "$(lab_json "$r.map" capabilities)" "$old"
check "R-CAP-1 pcpc announce --capabilities exits 0" \
  lab_pc "$r.ann" -s 192.0.2.1 announce --capabilities
check "R-CAP-4 ANNOUNCE response carries the set" \
  lab_eq capabilities "$(lab_json "$r.ann" capabilities)" "$old"
lab_pcpc -s 2001:db8:1::1 announce --capabilities >"$r.human6" 2>&1
lab_ev <"$r.human6"
check "R-CAP-2 human output names the server: CAPABILITY server=2001:db8:1::1 ..." \
  grep -qx 'CAPABILITY server=2001:db8:1::1 nat44,ipv6-firewall,tcp,udp' "$r.human6"
lab_pc "$r.plain" -s 192.0.2.1 map -p tcp -i 8081 -l 600
check "R-CAP-1 without --capabilities nothing comes back" \
  lab_eq capabilities "$(lab_json "$r.plain" capabilities)" ""

lab_log "R-CAP-8: SCTP is outside the set"
lab_pc "$r.sctp" -s 192.0.2.1 map -p sctp -i 9000 -l 600
rc=$?
check "R-CAP-8 MAP sctp exits 1 (server error)" lab_eq exit "$rc" 1
check "R-CAP-8 result UNSUPP_PROTOCOL" lab_eq result "$(lab_json "$r.sctp" result)" UNSUPP_PROTOCOL
check "R-CAP-8 the error carries the set" lab_eq capabilities "$(lab_json "$r.sctp" capabilities)" "$old"

lab_log "R-CAP-7: pcpc listen, then SCTP added and SIGHUP"
listen_log=$LAB_DIR/listen.log
lab_spawn "$LAB_CLI" "$listen_log" "$PCPC_BIN" -s 192.0.2.1 --timeout 30 listen --count 2
listen_pid=$LAB_LASTPID
for _ in $(seq 1 50); do
  grep -q 'listening for ANNOUNCE' "$listen_log" 2>/dev/null && break
  sleep 0.1
done
check "pcpc listen is ready" grep -q 'listening for ANNOUNCE' "$listen_log"
write_conf '["tcp", "udp", "sctp"]' '["nat44", "ipv6-firewall", "tcp", "udp", "sctp"]'
t0=$(date +%s%N)
kill -HUP "$LAB_PCPD_PID"
seen=""
for _ in $(seq 1 20); do  # 2 s at most; the requirement below is 1 s
  if grep -q '^CAPABILITY server=192.0.2.1 nat44,ipv6-firewall,tcp,udp,sctp$' "$listen_log"; then
    seen=$((($(date +%s%N) - t0) / 1000000))
    break
  fi
  sleep 0.05
done
lab_ev <"$listen_log"
check "R-CAP-7 pcpc listen printed the new set (after ${seen:-never} ms)" test -n "$seen"
check "R-CAP-7 within a second of SIGHUP" test "${seen:-99999}" -le 1000
check "RFC 6887 §14.1.3 the ANNOUNCE line names the server" \
  grep -q '^ANNOUNCE server=192.0.2.1 epoch=[0-9]* epoch_valid$' "$listen_log"
for _ in $(seq 1 30); do lab_ours "$listen_pid" || break; sleep 0.1; done
wait "$listen_pid" 2>/dev/null
lrc=$?
check "pcpc listen --count 2 exits 0 after its two events" lab_eq exit "$lrc" 0
grep capability.changed "$LAB_PCPD_LOG" | lab_ev
check "pcpd logged capability.changed" grep -q 'capability.changed' "$LAB_PCPD_LOG"

lab_pc "$r.map2" -s 192.0.2.1 map -p tcp -i 8082 -l 600 --capabilities
check "R-CAP-4 after the reload MAP returns the new set" \
  lab_eq capabilities "$(lab_json "$r.map2" capabilities)" "$new"
lab_finish
