#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_burst.sh: the requests of one socket read go to the kernel in one nftables transaction
# (core::Server::handle_burst), and each request stays all or nothing (R-HDR-10).
#   1. pcpd stopped (SIGSTOP), 8 MAP requests queued on its socket, pcpd continued: one
#      recvmmsg takes all 8; all get SUCCESS, pcpd_netlink_batches_total grows by exactly 1 and
#      pcpd_bursts_total{outcome="one_transaction"} by 1; pcpctl list matches the nft table.
#      That transaction went as one message per set (Grouping::PerSet): the kernel took it the
#      first time (pcpd_netlink_grouped_refused_total +0).
#   2. A foreign element (nft add element, unknown to pcpd) holds 203.0.113.1 tcp 7777. 8 more
#      requests queued the same way, one of them asking for 203.0.113.1:7777 with
#      PREFER_FAILURE: the kernel refuses the burst's transaction (EEXIST), pcpd rolls it back
#      and applies each request alone: 7 SUCCESS, that one NO_RESOURCES with a short lifetime
#      (R-HDR-10, R-RC-2), retried_per_request +1, grouped_refused +1 (the grouped transaction
#      was refused, then the same one per element), and nothing of the refused request anywhere.
#   3. Refreshes (R-MAP-6): on a kernel that restarts element timers in place (6.10+,
#      pcpd_netlink_refresh_in_place 1, found by pcpd's probe at start), a refresh with the same
#      lifetime writes 2 element updates and no add or delete; on an older one 2 deletes and 2
#      adds. Either way the kernel's DNAT and SNAT timers are restarted (nft -j: expires close to
#      the timeout again) and pcpctl list still matches the table.
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-120}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_burst
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
lab_pcpd_start "$conf"
r=$LAB_DIR/r

# burst TAG PORT...: pcpd stopped, one `pcpc map` per internal PORT started (each sends its
# request once before pcpd can read any), pcpd continued; waits for every pcpc. A PORT written
# as PORT:EXT asks for external port EXT with PREFER_FAILURE.
burst() {
  local tag=$1 p pids=() i
  shift
  kill -STOP "$LAB_PCPD_PID" || return 1
  for p in "$@"; do
    if [[ $p == *:* ]]; then
      lab_pcpc --json map -p tcp -i "${p%%:*}" -e "${p#*:}" -a 203.0.113.1 --prefer-failure -l 600 \
        >"$r.$tag.${p%%:*}" 2>&1 &
    else
      lab_pcpc --json map -p tcp -i "$p" -l 600 >"$r.$tag.$p" 2>&1 &
    fi
    pids+=($!)
  done
  # Until every pcpc has sent its first request (the next retransmission is 3 s away, RFC 6887
  # §8.1.1): pcpd's receive queue is non-empty and has not grown for 0.3 s.
  local prev=-1 cur stable=0
  for i in $(seq 1 50); do
    cur=$(rxq)
    if [ "$cur" -gt 0 ] && [ "$cur" = "$prev" ]; then stable=$((stable + 1)); else stable=0; fi
    [ "$stable" -ge 3 ] && break
    prev=$cur
    sleep 0.1
  done
  echo "    pcpd's receive queue before SIGCONT: $cur bytes"
  kill -CONT "$LAB_PCPD_PID"
  for i in "${pids[@]}"; do wait "$i"; done
  return 0
}
# Bytes queued on pcpd's IPv4 socket (port 5351 = 0x14E7; /proc/net/udp tx_queue:rx_queue).
rxq() {
  local q
  q=$(lab_rtr awk 'NR > 1 && $2 ~ /:14E7$/ {split($5, q, ":"); print q[2]; exit}' /proc/net/udp)
  echo $((16#${q:-0}))
}
result_of() { lab_json "$r.$1.$2" result; }
all_success() { # all_success TAG PORT...
  local tag=$1 p ok=0
  shift
  for p in "$@"; do
    [ "$(result_of "$tag" "$p")" = SUCCESS ] && ok=$((ok + 1))
  done
  lab_eq "SUCCESS answers" "$ok" "$#"
}

lab_log "1: 8 MAP requests in one socket read"
b0=$(lab_stat pcpd_netlink_batches_total)
o0=$(lab_stat 'pcpd_bursts_total{outcome="one_transaction"}')
g0=$(lab_stat pcpd_netlink_grouped_refused_total)
burst one 5001 5002 5003 5004 5005 5006 5007 5008
check "all 8 requests answered SUCCESS" all_success one 5001 5002 5003 5004 5005 5006 5007 5008
check "one nft transaction for the 8 (pcpd_netlink_batches_total +1)" \
  lab_eq "batches added" "$(( $(lab_stat pcpd_netlink_batches_total) - b0 ))" 1
check "pcpd_bursts_total{outcome=\"one_transaction\"} +1" \
  lab_eq "bursts added" "$(( $(lab_stat 'pcpd_bursts_total{outcome="one_transaction"}') - o0 ))" 1
check "the kernel took the one-message-per-set transaction (grouped_refused +0)" \
  lab_eq "grouped refused" "$(( $(lab_stat pcpd_netlink_grouped_refused_total) - g0 ))" 0
check "pcpctl list and inet pcpd match (8 mappings)" lab_consistent one 8

lab_log "2: a foreign element holds 203.0.113.1 tcp 7777; one of 8 requests asks for it"
lab_rtr nft add element inet pcpd map4_dnat '{ 203.0.113.1 . tcp . 7777 : 192.0.2.99 . 7777 }' ||
  lab_die "nft add element"
t0=$(lab_stat 'pcpd_bursts_total{outcome="retried_per_request"}')
burst two 6001 6002 6003 6004:7777 6005 6006 6007 6008
check "R-HDR-10 the request whose element the kernel refused: NO_RESOURCES" \
  lab_eq "result of 6004" "$(result_of two 6004)" NO_RESOURCES
check "R-RC-2 ... with a short-lifetime error (lifetime <= 30)" \
  lab_ge "30 - lifetime" $((30 - $(lab_json "$r.two.6004" lifetime))) 0
check "the other 7 requests of the burst: SUCCESS" all_success two 6001 6002 6003 6005 6006 6007 6008
check "pcpd_bursts_total{outcome=\"retried_per_request\"} +1" \
  lab_eq "retried bursts added" "$(( $(lab_stat 'pcpd_bursts_total{outcome="retried_per_request"}') - t0 ))" 1
check "the grouped transaction was refused once (grouped_refused +1)" \
  lab_eq "grouped refused" "$(( $(lab_stat pcpd_netlink_grouped_refused_total) - g0 ))" 1
lab_rtr nft delete element inet pcpd map4_dnat '{ 203.0.113.1 . tcp . 7777 }' || lab_die "nft delete element"
check "nothing of the refused request: pcpctl list and inet pcpd match (15 mappings)" lab_consistent two 15
check "its neighbour 192.0.2.10:6005 is in pcpctl list" grep -q '"internal": "192.0.2.10:6005"' "$LAB_DIR/list.two.json"
check_not "192.0.2.10:6004 is not" grep -q '"internal": "192.0.2.10:6004"' "$LAB_DIR/list.two.json"

lab_log "3: a refresh with the same lifetime restarts the kernel timers"
# Remaining seconds of the map4_dnat / map4_snat element for 192.0.2.10:5001 (nft -j list).
expires_of() {
  lab_rtr nft -j list map inet pcpd "$1" | python3 -c '
import json, sys
want = sys.argv[1]
for o in json.load(sys.stdin)["nftables"]:
    for e in o.get("map", {}).get("elem", []):
        k = e[0]["elem"] if isinstance(e[0], dict) and "elem" in e[0] else None
        if k and want in json.dumps(k["val"]): print(k["expires"], k["timeout"]); sys.exit(0)
print("-1 -1")' "$2"
}
in_place=$(lab_stat pcpd_netlink_refresh_in_place)
kernel=$(uname -r | awk -F. '{print $1 * 1000 + $2}')
check "pcpd_netlink_refresh_in_place is 1 exactly on kernels 6.10 and later (here $(uname -r))" \
  lab_eq "refresh_in_place" "$in_place" "$([ "$kernel" -ge 6010 ] && echo 1 || echo 0)"
sleep 3
read -r dnat_before timeout < <(expires_of map4_dnat '"203.0.113.1", "tcp", 5001')
read -r snat_before _ < <(expires_of map4_snat '"192.0.2.10", "tcp", 5001')
echo "    before the refresh: DNAT expires in ${dnat_before}s, SNAT in ${snat_before}s (timeout ${timeout}s)"
check "the timers ran down by more than 3 s before the refresh" lab_ge "timeout - 4 - DNAT" $((timeout - 4 - dnat_before)) 0
u0=$(lab_stat 'pcpd_netlink_elements_total{op="update"}')
a0=$(lab_stat 'pcpd_netlink_elements_total{op="add"}')
d0=$(lab_stat 'pcpd_netlink_elements_total{op="delete"}')
t_refresh=$SECONDS
lab_pcpc --json map -p tcp -i 5001 -l 600 -n "$(lab_json "$r.one.5001" nonce)" >"$r.refresh" 2>&1
check "R-MAP-6 the refresh: SUCCESS, same external port" \
  lab_eq "refresh" "$(lab_json "$r.refresh" result)/$(lab_json "$r.refresh" external_port)" \
  "SUCCESS/$(lab_json "$r.one.5001" external_port)"
read -r dnat_after _ < <(expires_of map4_dnat '"203.0.113.1", "tcp", 5001')
read -r snat_after _ < <(expires_of map4_snat '"192.0.2.10", "tcp", 5001')
# A restarted timer shows the timeout less the time since the refresh (measured: on a loaded
# machine the two `nft -j list` take seconds), and more than before the refresh.
since=$((SECONDS - t_refresh + 1))
echo "    after: DNAT expires in ${dnat_after}s, SNAT in ${snat_after}s (${since}s after the refresh began)"
check "the DNAT timer was restarted (expires $dnat_before -> $dnat_after s of $timeout)" \
  bash -c "[ $dnat_after -gt $dnat_before ] && [ $dnat_after -ge $((timeout - 2 - since)) ]"
check "the SNAT timer was restarted (expires $snat_before -> $snat_after s)" \
  bash -c "[ $snat_after -gt $snat_before ] && [ $snat_after -ge $((timeout - 2 - since)) ]"
writes="$(( $(lab_stat 'pcpd_netlink_elements_total{op="update"}') - u0 ))/$(( $(lab_stat 'pcpd_netlink_elements_total{op="add"}') - a0 ))/$(( $(lab_stat 'pcpd_netlink_elements_total{op="delete"}') - d0 ))"
check "element writes update/add/delete: 2/0/0 in place, 0/2/2 otherwise" \
  lab_eq "writes" "$writes" "$([ "$in_place" = 1 ] && echo 2/0/0 || echo 0/2/2)"
check "pcpctl list and inet pcpd still match (15 mappings)" lab_consistent three 15

check "pcpd is still running" kill -0 "$LAB_PCPD_PID"
lab_finish
