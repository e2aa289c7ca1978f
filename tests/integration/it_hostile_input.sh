#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_hostile_input.sh: hostile datagrams from the LAN, end to end against the real pcpd.
# Host A (192.0.2.10, 2001:db8:1::10) holds a MAP mapping (IPv4, NAT) and an IPv6 pinhole made
# with pcpc; an attacker on 192.0.2.11 / 2001:db8:1::11 and A itself then send, one datagram
# each (tests/integration/hostile_tool.py, default config: no THIRD_PARTY, default rate limits,
# about 70 requests, far below the per-client burst of 300): unauthorised THIRD_PARTY, nonce
# theft (THIRD_PARTY naming A, a spoofed client address, A's port with PREFER_FAILURE, wrong
# nonces on refresh and delete), option length overruns and bad lengths, unknown mandatory
# options, the 1100-byte limit, truncated and padded datagrams, versions 0/1/3/255, the R bit,
# unknown opcodes, NAT-PMP garbage. Each gets the RFC's answer (checked byte for byte: header,
# copied request, padding) or silence. Afterwards `pcpctl list --json` and the elements of inet
# pcpd are unchanged (A's mappings: same external port, lifetime not shortened), pcpd still
# answers PCP and NAT-PMP, and `pcpctl stats` counters moved by at least what was sent.
# Requirements: R-TP-3, R-TP-6, R-OWN-2, R-OWN-3, R-ADDR-1, R-OPT-2, R-OPT-4, R-HDR-3..8,
# R-HDR-10, R-VER-2, R-VER-3, R-VER-4, R-PMP-1, R-PMP-2, R-LIFE-4, R-MAP-5, R-QUOTA-5.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_hostile_input
TOOL=$LAB_SRC/tests/integration/hostile_tool.py
lab_up
ip -n "$LAB_CLI" addr add 192.0.2.11/24 dev eth0
ip -n "$LAB_CLI" addr add 2001:db8:1::11/64 dev eth0 nodad
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf" 'daemon.log_level="info"'
lab_pcpd_start "$conf"

A4=192.0.2.10 A6=2001:db8:1::10 B4=192.0.2.11 B6=2001:db8:1::11 S4=192.0.2.1 S6=2001:db8:1::1
declare -A want=()  # counter key -> datagrams sent that must move it
n=0
# hx "R-ID text" COUNTERS CASE EXPECT [hostile_tool send options]: one datagram, one check; each
# comma-separated counter key in COUNTERS is expected to move by one. Output in $HX_OUT.
hx() {
  local text=$1 counters=$2 case=$3 expect=$4 k ks
  shift 4
  n=$((n + 1))
  HX_OUT=$LAB_DIR/hx.$n
  # shellcheck disable=SC2016  # the inner script's own positional parameters
  check "$text" bash -c 'ip netns exec "$1" timeout 10 python3 "$2" send --case "$3" --expect "$4" \
    "${@:6}" >"$5" 2>&1; rc=$?; sed "s/^/    | /" "$5"; exit $rc' _ "$LAB_CLI" "$TOOL" "$case" \
    "$expect" "$HX_OUT" "$@"
  IFS=, read -ra ks <<<"$counters"
  for k in "${ks[@]}"; do want[$k]=$((${want[$k]:-0} + 1)); done
}
prom() { pcpctl stats --format prometheus; }
# metric FILE NAME{labels}: the value (0 when absent), as an integer.
metric() { awk -v k="$2" '$1 == k {v = $2} END {printf "%d\n", v + 0}' "$1"; }
remaining_of() { # remaining_of LIST.json INTERNAL: remaining lifetime of that mapping
  python3 -c 'import json,sys; print(next((m["remaining"] for m in json.load(open(sys.argv[1])) if m["internal"] == sys.argv[2]), -1))' "$1" "$2"
}
# The list without the remaining lifetimes (they count down), sorted.
list_stable() {
  python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); [m.pop("remaining", None) for m in l]; print(json.dumps(sorted(l, key=lambda m: json.dumps(m, sort_keys=True)), sort_keys=True, indent=1))' "$1"
}

lab_log "host A: a MAP mapping (tcp 8080) and an IPv6 pinhole (tcp 8443) with pcpc"
r=$LAB_DIR/r
check "A creates tcp 192.0.2.10:8080 (pcpc map)" lab_pc "$r.a4" -s $S4 --source $A4 map -p tcp -i 8080 -l 600
check "A creates tcp [2001:db8:1::10]:8443 (pcpc map over IPv6)" lab_pc "$r.a6" -s $S6 --source $A6 map -p tcp -i 8443 -l 600
NA4=$(lab_json "$r.a4" nonce) EA4=$(lab_json "$r.a4" external_port)
NA6=$(lab_json "$r.a6" nonce)
[[ "$NA4" =~ ^[0-9a-f]{24}$ && "$NA6" =~ ^[0-9a-f]{24}$ && "$EA4" =~ ^[0-9]+$ ]] ||
  lab_die "no nonce/external port from pcpc (nonce '$NA4' '$NA6', port '$EA4')"
other=$(lab_nonce)
pcpctl list --json >"$LAB_DIR/list.before.json" || lab_die "pcpctl list"
lab_nft_elements >"$LAB_DIR/nft.before" || lab_die "nft list"
prom >"$LAB_DIR/stats.before" || lab_die "pcpctl stats"
t_before=$(date +%s)
check "A's mappings are listed (2 mappings)" lab_eq mappings \
  "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$LAB_DIR/list.before.json")" 2

lab_log "unauthorised THIRD_PARTY (no [third_party] allow-list: the option is disabled)"
hx "R-TP-3 MAP for 192.0.2.11 with THIRD_PARTY from 192.0.2.10: UNSUPP_OPTION" r:UNSUPP_OPTION \
  map_tp UNSUPP_OPTION --server $S4 --source $A4 --third-party $B4 --iport 7101
hx "R-TP-3 MAP for 2001:db8:1::11 with THIRD_PARTY from 2001:db8:1::10: UNSUPP_OPTION" r:UNSUPP_OPTION \
  map_tp UNSUPP_OPTION --server $S6 --source $A6 --third-party $B6 --iport 7101
hx "R-TP-6/R-TP-3 delete-all THIRD_PARTY (all-zeros address) from 192.0.2.11: UNSUPP_OPTION" r:UNSUPP_OPTION \
  delete_all_tp UNSUPP_OPTION --server $S4 --source $B4

lab_log "nonce theft: 192.0.2.11 / 2001:db8:1::11 against A's mappings, and A's port with another nonce"
hx "R-TP-3 THIRD_PARTY naming 192.0.2.10:8080 from .11 (take it): UNSUPP_OPTION" r:UNSUPP_OPTION \
  map_tp UNSUPP_OPTION --server $S4 --source $B4 --third-party $A4 --iport 8080
hx "R-TP-3 THIRD_PARTY naming 192.0.2.10:8080 from .11 with A's own nonce (delete): UNSUPP_OPTION" r:UNSUPP_OPTION \
  map_tp UNSUPP_OPTION --server $S4 --source $B4 --third-party $A4 --iport 8080 --nonce "$NA4" --lifetime 0
hx "R-TP-3 THIRD_PARTY naming [2001:db8:1::10]:8443 from ::11 with A's nonce (delete): UNSUPP_OPTION" r:UNSUPP_OPTION \
  map_tp UNSUPP_OPTION --server $S6 --source $B6 --third-party $A6 --iport 8443 --nonce "$NA6" --lifetime 0
hx "R-ADDR-1 .11 spoofing client address 192.0.2.10 with A's nonce (delete): ADDRESS_MISMATCH" r:ADDRESS_MISMATCH \
  map ADDRESS_MISMATCH --server $S4 --source $B4 --client-addr $A4 --iport 8080 --nonce "$NA4" --lifetime 0 --reserved zero
hx "R-OWN-3/R-MAP-5 .11 asks for A's external port $EA4 with PREFER_FAILURE: CANNOT_PROVIDE_EXTERNAL" \
  r:CANNOT_PROVIDE_EXTERNAL map_pf CANNOT_PROVIDE_EXTERNAL --server $S4 --source $B4 --iport 8080 \
  --ext-port "$EA4" --ext-addr 203.0.113.1
rem_now=$(remaining_of <(pcpctl list --json) "$A4:8080")
hx "R-OWN-2 refresh of 192.0.2.10:8080 with another nonce: NOT_AUTHORIZED" r:NOT_AUTHORIZED \
  map NOT_AUTHORIZED --server $S4 --source $A4 --iport 8080 --nonce "$other" --lifetime 86400 --reserved zero --show-lifetime
err_lt=$(sed -n 's/^lifetime=//p' "$HX_OUT")
check "R-OWN-2 (C17) its error lifetime is the mapping's remaining lifetime ($rem_now s)" \
  bash -c "echo \"    error lifetime '$err_lt', remaining '$rem_now'\"; [[ '$err_lt' =~ ^[0-9]+\$ ]] && [ $err_lt -le $((rem_now + 1)) ] && [ $err_lt -ge $((rem_now - 5)) ]"
hx "R-OWN-2 delete of 192.0.2.10:8080 with another nonce: NOT_AUTHORIZED" r:NOT_AUTHORIZED \
  map NOT_AUTHORIZED --server $S4 --source $A4 --iport 8080 --nonce "$other" --lifetime 0 --reserved zero
hx "R-OWN-2 shortening 192.0.2.10:8080 (lifetime 1) with another nonce: NOT_AUTHORIZED" r:NOT_AUTHORIZED \
  map NOT_AUTHORIZED --server $S4 --source $A4 --iport 8080 --nonce "$other" --lifetime 1
hx "R-OWN-2 pinhole renewal of [2001:db8:1::10]:8443 with another nonce: NOT_AUTHORIZED" r:NOT_AUTHORIZED \
  map NOT_AUTHORIZED --server $S6 --source $A6 --iport 8443 --nonce "$other" --lifetime 86400 --reserved zero
hx "R-OWN-2 pinhole delete of [2001:db8:1::10]:8443 with another nonce: NOT_AUTHORIZED" r:NOT_AUTHORIZED \
  map NOT_AUTHORIZED --server $S6 --source $A6 --iport 8443 --nonce "$other" --lifetime 0

lab_log "options: overruns, bad lengths, repeats, unknown mandatory codes"
hx "R-OPT-4 DESCRIPTION whose length (40) runs past the datagram: MALFORMED_OPTION" r:MALFORMED_OPTION \
  opt_overrun MALFORMED_OPTION --server $S4 --source $A4
hx "R-OPT-4 same over IPv6: MALFORMED_OPTION" r:MALFORMED_OPTION opt_overrun MALFORMED_OPTION --server $S6 --source $A6
hx "R-OPT-4 FILTER with length 4095 in an 84-byte MAP: MALFORMED_OPTION" r:MALFORMED_OPTION \
  opt_overrun_long MALFORMED_OPTION --server $S4 --source $A4
hx "R-OPT-4 PREFER_FAILURE with length 4 (must be 0): MALFORMED_OPTION" r:MALFORMED_OPTION \
  opt_pf_len4 MALFORMED_OPTION --server $S4 --source $A4 --ext-port 40000 --ext-addr 203.0.113.1
hx "R-OPT-4 FILTER with length 16 (must be 20): MALFORMED_OPTION" r:MALFORMED_OPTION \
  opt_filter_len16 MALFORMED_OPTION --server $S4 --source $A4
hx "R-OPT-4 PREFER_FAILURE twice: MALFORMED_OPTION" r:MALFORMED_OPTION \
  opt_pf_twice MALFORMED_OPTION --server $S4 --source $A4 --ext-port 40000 --ext-addr 203.0.113.1
hx "R-OPT-2 unknown mandatory option 99: UNSUPP_OPTION" r:UNSUPP_OPTION \
  opt_unknown_mandatory UNSUPP_OPTION --server $S4 --source $A4
hx "R-OPT-2 MAP + 4 trailing zero bytes (option code 0, mandatory, unknown): UNSUPP_OPTION" r:UNSUPP_OPTION \
  trailing_zeros UNSUPP_OPTION --server $S4 --source $A4

lab_log "sizes: the 1100-byte limit, truncated and padded datagrams"
hx "R-HDR-5 1104-byte MAP: MALFORMED_REQUEST, the copy truncated to 1100 bytes" r:MALFORMED_REQUEST \
  map_1104 MALFORMED_REQUEST --server $S4 --source $A4 --reserved copy
hx "R-HDR-5 1104-byte MAP over IPv6: MALFORMED_REQUEST" r:MALFORMED_REQUEST \
  map_1104 MALFORMED_REQUEST --server $S6 --source $A6 --reserved copy
hx "R-HDR-5 1400-byte MAP: MALFORMED_REQUEST, 1100-byte answer" r:MALFORMED_REQUEST \
  map_1400 MALFORMED_REQUEST --server $S4 --source $A4 --reserved copy
hx "R-HDR-5 1101-byte MAP: MALFORMED_REQUEST" r:MALFORMED_REQUEST \
  map_1101 MALFORMED_REQUEST --server $S4 --source $A4 --reserved copy
hx "R-HDR-5 exactly 1100 bytes, ANNOUNCE + optional option: SUCCESS" r:SUCCESS \
  announce_1100 SUCCESS --server $S4 --source $A4
hx "R-HDR-5/R-LIFE-4 exactly 1100 bytes, MAP delete of no mapping + DESCRIPTION: SUCCESS" r:SUCCESS \
  delete_1100 SUCCESS --server $S4 --source $A4 --iport 7102
hx "R-HDR-3 1-byte datagram: silence" dropped len1 silence --server $S4 --source $A4
hx "R-HDR-5 2-byte version-2 MAP: silence" dropped len2 silence --server $S4 --source $A4
hx "R-HDR-5 2-byte version-2 MAP over IPv6: silence" dropped len2 silence --server $S6 --source $A6
hx "R-HDR-5 20-byte version-2 MAP (< 24): silence" dropped len20 silence --server $S4 --source $A4
hx "R-HDR-3 empty datagram: silence" empty len0 silence --server $S4 --source $A4
hx "R-HDR-5 MAP cut after 40 bytes: MALFORMED_REQUEST" r:MALFORMED_REQUEST \
  map_cut40 MALFORMED_REQUEST --server $S4 --source $A4 --reserved copy
hx "R-HDR-5 MAP cut after 56 bytes: MALFORMED_REQUEST" r:MALFORMED_REQUEST \
  map_cut56 MALFORMED_REQUEST --server $S4 --source $A4 --reserved copy
hx "R-HDR-5 61-byte MAP (not a multiple of 4): MALFORMED_REQUEST, answer padded to 64" r:MALFORMED_REQUEST \
  map_pad61 MALFORMED_REQUEST --server $S4 --source $A4 --reserved copy
hx "R-HDR-5 62-byte MAP over IPv6: MALFORMED_REQUEST" r:MALFORMED_REQUEST \
  map_pad62 MALFORMED_REQUEST --server $S6 --source $A6 --reserved copy

lab_log "version, R bit, opcode"
hx "R-VER-4 version-1 MAP: UNSUPP_VERSION, version 2 in the answer" r:UNSUPP_VERSION \
  v1_map UNSUPP_VERSION --server $S4 --source $A4 --reserved copy
hx "R-VER-4 version-1 MAP over IPv6: UNSUPP_VERSION" r:UNSUPP_VERSION \
  v1_map UNSUPP_VERSION --server $S6 --source $A6 --reserved copy
hx "R-VER-2 version-3 MAP: UNSUPP_VERSION, version 2 in the answer" r:UNSUPP_VERSION \
  v3_map UNSUPP_VERSION --server $S4 --source $A4 --reserved copy
hx "R-VER-2 4-byte version-255 datagram: UNSUPP_VERSION as a 24-byte header" r:UNSUPP_VERSION \
  v255_short UNSUPP_VERSION --server $S4 --source $A4 --reserved copy
hx "R-VER-3 version 0 with a PCP ANNOUNCE layout: handled as NAT-PMP (external address)" natpmp \
  v0_announce pmp:0 --server $S4 --source $A4
hx "R-HDR-4 R bit set (a MAP response sent to the server): silence" dropped rbit_map silence --server $S4 --source $A4
hx "R-HDR-4 R bit set over IPv6: silence" dropped rbit_map silence --server $S6 --source $A6
hx "R-HDR-4 R bit set with version 1 (before the version check): silence" dropped rbit_v1 silence --server $S4 --source $A4
hx "R-HDR-4 an ANNOUNCE response sent to the server: silence" dropped rbit_announce silence --server $S4 --source $A4
hx "R-HDR-7 opcode 5: UNSUPP_OPCODE, the rest returned untouched" r:UNSUPP_OPCODE \
  opcode5 UNSUPP_OPCODE --server $S4 --source $A4 --reserved copy
hx "R-HDR-7 opcode 3 (AUTHENTICATION, not supported): UNSUPP_OPCODE" r:UNSUPP_OPCODE \
  opcode_auth UNSUPP_OPCODE --server $S4 --source $A4 --reserved copy
hx "R-HDR-7 opcode 127 with no data: UNSUPP_OPCODE" r:UNSUPP_OPCODE \
  opcode127 UNSUPP_OPCODE --server $S4 --source $A4 --reserved copy

lab_log "NAT-PMP garbage on 5351"
hx "R-PMP-2 1-byte NAT-PMP datagram: silence" natpmp,dropped pmp_len1 silence --server $S4 --source $A4
hx "R-PMP-2 3-byte NAT-PMP UDP map request: silence (too short)" natpmp,dropped pmp_map_len3 silence --server $S4 --source $A4
hx "R-PMP-2 11-byte NAT-PMP TCP map request: silence (too short)" natpmp,dropped pmp_map_len11 silence \
  --server $S4 --source $A4 --iport 7103
hx "R-PMP-2 NAT-PMP opcode 3: the request back, result 5, opcode 131 (RFC 6886 §3.5)" natpmp,natpmp_err pmp_op3 pmp:5 --server $S4 --source $A4
hx "R-PMP-2 NAT-PMP opcode 127 (12 bytes): the 12 bytes back, result 5, opcode 255" natpmp,natpmp_err pmp_op127_len12 pmp:5 --server $S4 --source $A4
hx "R-PMP-2 NAT-PMP external-address response sent to the server: silence" natpmp,dropped \
  pmp_response_op128 silence --server $S4 --source $A4
hx "R-PMP-2 NAT-PMP map response sent to the server: silence" natpmp,dropped \
  pmp_response_op129 silence --server $S4 --source $A4
hx "R-VER-4 2-byte version-1 datagram: UNSUPP_VERSION (PCP), 24-byte answer" r:UNSUPP_VERSION \
  pmp_v1_short UNSUPP_VERSION --server $S4 --source $A4 --reserved copy
hx "R-PMP-1 NAT-PMP external-address request over IPv6: silence" natpmp_ipv6 pmp_external silence --server $S6 --source $A6

lab_log "after all of it: nothing created or changed"
pcpctl list --json >"$LAB_DIR/list.after.json"
lab_nft_elements >"$LAB_DIR/nft.after"
t_after=$(date +%s)
check "R-HDR-10 pcpctl list unchanged (remaining lifetimes left out)" \
  diff <(list_stable "$LAB_DIR/list.before.json") <(list_stable "$LAB_DIR/list.after.json")
check "R-HDR-10 elements of inet pcpd unchanged" diff "$LAB_DIR/nft.before" "$LAB_DIR/nft.after"
nft_has() { # nft_has REGEX: a line of the element listing after the attacks matches (printed)
  grep -E "$1" "$LAB_DIR/nft.after" | lab_ev
  grep -Eq "$1" "$LAB_DIR/nft.after"
}
check "R-OWN-2 inet pcpd still maps 203.0.113.1:$EA4 to 192.0.2.10:8080 with A's nonce (map4_dnat)" \
  nft_has "^map4_dnat: 203\.0\.113\.1 \. (tcp|6) \. $EA4 .*n=$NA4 .*: 192\.0\.2\.10 \. 8080\$"
check "R-OWN-2 inet pcpd still holds the pinhole [2001:db8:1::10]:8443 with A's nonce (pin6)" \
  nft_has "^pin6: 2001:db8:1::10 \. (tcp|6) \. 8443 .*n=$NA6 "
for ia in "$A4:8080" "[$A6]:8443"; do
  rb=$(remaining_of "$LAB_DIR/list.before.json" "$ia")
  ra=$(remaining_of "$LAB_DIR/list.after.json" "$ia")
  check "R-OWN-2 $ia lifetime not shortened (remaining $rb -> $ra over $((t_after - t_before)) s)" \
    lab_ge remaining "$ra" $((rb - (t_after - t_before) - 2))
done
sleep 0.2
prom >"$LAB_DIR/stats.after"
counter_name() {
  case $1 in
    dropped) echo pcpd_dropped_total ;;
    empty) echo 'pcpd_ingress_dropped_total{reason="empty"}' ;;
    natpmp_ipv6) echo 'pcpd_ingress_dropped_total{reason="natpmp_ipv6"}' ;;
    natpmp) echo pcpd_natpmp_requests_total ;;
    natpmp_err) echo pcpd_natpmp_errors_total ;;
    r:*) echo "pcpd_responses_total{result=\"${1#r:}\"}" ;;
  esac
}
for k in $(printf '%s\n' "${!want[@]}" | sort); do
  name=$(counter_name "$k")
  b=$(metric "$LAB_DIR/stats.before" "$name") a=$(metric "$LAB_DIR/stats.after" "$name")
  check "stats: $name moved by >= ${want[$k]}" lab_ge "$name delta" $((a - b)) "${want[$k]}"
done
for reason in rate_limited_client rate_limited_global; do
  name="pcpd_refused_total{reason=\"$reason\"}"
  check "R-QUOTA-5 no request was rate limited ($name unchanged)" lab_eq "$name delta" \
    $(($(metric "$LAB_DIR/stats.after" "$name") - $(metric "$LAB_DIR/stats.before" "$name"))) 0
done

lab_log "pcpd still serves"
check "pcpd still running" kill -0 "$LAB_PCPD_PID"
hx "R-PMP-2 a good NAT-PMP external-address request: result 0, 203.0.113.1" natpmp \
  pmp_external pmp:0 --server $S4 --source $A4 --want-ext 203.0.113.1
check "R-OWN-2 A refreshes 192.0.2.10:8080 with its own nonce: SUCCESS" \
  lab_pc "$r.ref" -s $S4 --source $A4 map -p tcp -i 8080 -l 600 -n "$NA4"
check "... same external port $EA4" lab_eq external_port "$(lab_json "$r.ref" external_port)" "$EA4"
check "a good MAP from 192.0.2.11 is answered SUCCESS" lab_pc "$r.b" -s $S4 --source $B4 map -p tcp -i 8090 -l 120
check "a good MAP over IPv6 from 2001:db8:1::11 is answered SUCCESS" lab_pc "$r.b6" -s $S6 --source $B6 map -p tcp -i 8090 -l 120

lab_log "THIRD_PARTY enabled with an allow-list of 192.0.2.11/32 only (pcpd restarted)"
lab_pcpd_stop
lab_ctl_config "$conf" 'daemon.log_level="info"' \
  'third_party.enabled=true' 'third_party.allow=["192.0.2.11/32"]'
lab_pcpd_start "$conf"
hx "R-TP-3 (C1) enabled, but 192.0.2.10 is not on the allow-list: UNSUPP_OPTION, not NOT_AUTHORIZED" \
  r:UNSUPP_OPTION map_tp UNSUPP_OPTION --server $S4 --source $A4 --third-party $B4 --iport 7102
hx "R-TP-1 R-TP-4 192.0.2.11 (allowed) maps 7103 for 192.0.2.10: SUCCESS" r:SUCCESS \
  map_tp SUCCESS --server $S4 --source $B4 --third-party $A4 --iport 7103
pcpctl list --json >"$LAB_DIR/list.tp.json"
check "... pcpctl list: internal 192.0.2.10:7103, third party, client 192.0.2.11" python3 -c "
import json, sys
ms = [m for m in json.load(open('$LAB_DIR/list.tp.json')) if m.get('internal') == '192.0.2.10:7103']
sys.exit(0 if len(ms) == 1 and ms[0].get('third_party') and ms[0].get('client') == '192.0.2.11' else 1)"
lab_finish
