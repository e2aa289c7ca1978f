#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_hostile.sh: requests that must not be served. Raw PCP MAP requests (scripts/labtool.py pcp)
# from the WAN side get no answer at all, whichever router address they are sent to; a request
# whose PCP client address differs from its source gets ADDRESS_MISMATCH.
# Requirements: R-HDR-2 / R-SEC-6 (never answer on the WAN), R-ADDR-1 (ADDRESS_MISMATCH),
# R-HDR-1 (control: the same request from the LAN is answered).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_hostile
lab_up
conf=$LAB_DIR/pcpd.conf
lab_config "$conf"
lab_pcpd_start "$conf"
# Give the remote host a path to the router's LAN addresses, as an attacker next to it would have.
ip -n "$LAB_WAN" route add 192.0.2.1/32 via 203.0.113.1

raw() { # raw NS OUT labtool-pcp-args...
  local ns=$1 out=$2 rc
  shift 2
  ip netns exec "$ns" timeout 10 python3 "$LAB_TOOL" pcp "$@" >"$out" 2>&1
  rc=$?
  echo "  \$ labtool pcp $*   (exit $rc)"
  lab_ev <"$out"
  return $rc
}
r=$LAB_DIR/r

check "R-HDR-1 control: a MAP from the client (192.0.2.10) is answered" raw "$LAB_CLI" "$r.ok" --server 192.0.2.1 --iport 8080
check "R-HDR-1 control: ... with SUCCESS" grep -q 'name=SUCCESS' "$r.ok"
check "R-HDR-1 control: a MAP from 2001:db8:1::10 is answered" raw "$LAB_CLI" "$r.ok6" --server 2001:db8:1::1 --iport 8080
raw "$LAB_WAN" "$r.w1" --server 203.0.113.1 --iport 8080 --timeout 3
check "R-HDR-2 a MAP from 203.0.113.100 to 203.0.113.1 (WAN address) gets no answer" grep -qx 'no answer' "$r.w1"
raw "$LAB_WAN" "$r.w2" --server 192.0.2.1 --source 203.0.113.100 --iport 8080 --timeout 3
check "R-HDR-2 a MAP from the WAN to 192.0.2.1 (LAN address) gets no answer" grep -qx 'no answer' "$r.w2"
raw "$LAB_WAN" "$r.w3" --server 2001:db8:2::1 --iport 8080 --timeout 3
check "R-HDR-2 a MAP from 2001:db8:2::100 to 2001:db8:2::1 gets no answer" grep -qx 'no answer' "$r.w3"
raw "$LAB_WAN" "$r.w4" --server 2001:db8:1::1 --iport 8080 --timeout 3
check "R-HDR-2 a MAP from 2001:db8:2::100 to 2001:db8:1::1 (LAN address) gets no answer" grep -qx 'no answer' "$r.w4"
# The table is read once and checked to be readable and to hold the control mapping, so that the
# negative checks cannot pass because `nft list` failed.
table() { lab_rtr nft list table inet pcpd >"$1" 2>&1 && grep -q '192.0.2.10 . tcp . 8080' "$1"; }
check "inet pcpd is readable and holds the control mapping (192.0.2.10 . tcp . 8080)" table "$r.table1"
check_not "R-HDR-2 no mapping was created for a WAN sender" \
  grep -Eq '203\.0\.113\.100 \. [0-9]+|2001:db8:2::100 \. tcp' "$r.table1"
raw "$LAB_CLI" "$r.mm" --server 192.0.2.1 --client-addr 192.0.2.99 --iport 8081
check "R-ADDR-1 client address 192.0.2.99 from 192.0.2.10: ADDRESS_MISMATCH" grep -q 'result=12 ' "$r.mm"
raw "$LAB_CLI" "$r.mm6" --server 2001:db8:1::1 --client-addr 2001:db8:1::99 --iport 8081
check "R-ADDR-1 client address 2001:db8:1::99 from 2001:db8:1::10: ADDRESS_MISMATCH" grep -q 'result=12 ' "$r.mm6"
raw "$LAB_CLI" "$r.mm46" --server 2001:db8:1::1 --client-addr 192.0.2.10 --iport 8081
check "R-ADDR-1 IPv4 client address in an IPv6 packet: ADDRESS_MISMATCH" grep -q 'result=12 ' "$r.mm46"
check "inet pcpd is readable and holds the control mapping" table "$r.table2"
check_not "R-HDR-10 no mapping for tcp 8081 after the mismatches" grep -q ' tcp . 8081' "$r.table2"
lab_finish
