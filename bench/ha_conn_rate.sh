#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/ha_conn_rate.sh: what the checkpoint machinery (RFC 7767 election chains + conntrackd,
# docs/design.md "Checkpointing", ha/) costs in NEW CONNECTIONS PER SECOND through a router (the
# target: with the checkpoint chains loaded and 0 % elected, >= 95 % of the rate with no conntrack
# listener; the rate with conntrackd replicating everything for comparison).
#
# Measures new UDP flows per second forwarded and SNATed by a router namespace, every packet a new
# 5-tuple (pcpd-echo flood: raw UDP from 192.0.2.10 to 100 ports of 203.0.113.100, source port
# advancing), counted where they arrive (an nft counter in the remote namespace that then drops
# them, as in bench/scale.sh). The router carries the ruleset of scripts/ha-lab.sh
# (nft-rules/example-router.nft with "snat to 203.0.113.1 fully-random", then
# nft-rules/pcpd.nft), net.netfilter.nf_conntrack_events = 1 (ha/90-pcpd-conntrack.conf) and a UDP
# conntrack timeout of 1 s (so nf_conntrack_max is not the limit). Configurations:
#   a  baseline: pcpd.nft WITHOUT its election chains (pre_elect/out_elect deleted), no conntrackd,
#      i.e. no ctnetlink event listener at all
#   b  the recipe, 0 % elected: pcpd.nft complete (election chains, event mask 0x0/0x80 for
#      unelected flows), 1000 unrelated keys in elect4_dst and elect4_src, conntrackd running with
#      ha/conntrackd.conf (FTFW over a dedicated sync link to a standby namespace that runs the same
#      conntrackd), so conntrackd should hear nothing
#   c  conntrackd replicating everything: as a (no election chains, so the default event mask:
#      every flow reports NEW and DESTROY), conntrackd + standby as in b
#   r  the election chains alone, 0 % elected, NO conntrackd (splits the cost of b into the nft
#      rules and the listener)
#   e  (not in the default list) only the event-mask rules of pcpd.nft's pre_elect chain, without
#      the six election rules, no conntrackd: splits the cost of r into set lookups and event rules
#   d  the recipe, 100 % elected: as b plus the 100 target endpoints in elect4_dst, so every flow
#      gets mark 0x3 and the full event mask
#   o  (not in the default list; needs --old-rules) as r, but with the election chains of another
#      pcpd.nft (an older version): a before/after of a ruleset change within one run
# The configurations alternate in rounds (the order rotates each round) so that the load drift of
# the shared machine hits all alike. Each measurement: conntrackd (r1 and the standby r2) stopped,
# ruleset switched, kernel conntrack table flushed, conntrackd started fresh (b, c, d), flood for
# --seconds, counters read. Per measurement one JSON line (--out, default
# bench/results/ha_conn_rate-<stamp>.jsonl) with sent/delivered per second, the router's
# conntrack -S drop counters, the netlink socket drops of conntrackd's event socket, conntrackd's
# "-s" counters (events received, netlink overrun, catch event failed, resync, internal cache
# creations = flows replicated; on the standby external cache creations and lost messages) and
# the CPU time of both conntrackd processes. Summary (medians, ratios b/a c/a d/a, per-round
# ratios, target verdict) on stdout and in --summary (default bench/results/ha_conn_rate.txt).
#
# Usage: bench/ha_conn_rate.sh [--build DIR] [--rounds N] [--seconds S] [--configs "a r b c d"]
#                              [--out FILE] [--summary FILE] [--quick] [--report FILE.jsonl]
#                              [--old-rules FILE]
#   --build DIR   build dir holding bench/pcpd-echo (default: build)
#   --rounds N    rounds of all configurations (default 5, at most 50)
#   --seconds S   flood length per measurement (default 3, at most 60)
#   --quick       1 round of 1 s (a smoke run, about 20 s; results still written)
#   --old-rules F the pcpd.nft of config o (e.g. `git show HEAD~1:nft-rules/pcpd.nft > F`)
#   --report F    no measurement: print (and write to --summary) the summary of an earlier F.jsonl
# Columns of the summary are totals over the measurements of a configuration, except the rates
# (medians) and the conntrackd CPU (median of CPU seconds per wall second, r1 + standby).
# Needs root (namespaces, nftables, conntrackd). Exits 77 when not root, unless CI=true.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
rounds=5
seconds=3
configs="a r b c d"
out=
report=
old_rules=
summary=$repo/bench/results/ha_conn_rate.txt
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "${2:?--build DIR}" && pwd); shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --seconds) seconds=${2:?}; shift ;;
    --configs) configs=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    --summary) summary=${2:?}; shift ;;
    --quick) rounds=1; seconds=1 ;;
    --report) report=${2:?--report FILE.jsonl}; shift ;;
    --old-rules) old_rules=$(realpath "${2:?--old-rules FILE}"); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "ha_conn_rate.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $rounds =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] && [ "$rounds" -le 50 ] ||
  { echo "ha_conn_rate.sh: --rounds 1..50" >&2; exit 2; }
[[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v s="$seconds" 'BEGIN {exit !(s > 0 && s <= 60)}' ||
  { echo "ha_conn_rate.sh: --seconds (0, 60]" >&2; exit 2; }
for c in $configs; do
  case $c in a|r|b|c|d|e|o) ;; *) echo "ha_conn_rate.sh: unknown config $c (a r b c d e o)" >&2; exit 2 ;; esac
  if [ "$c" = o ] && [ ! -r "$old_rules" ]; then echo "ha_conn_rate.sh: config o needs --old-rules FILE" >&2; exit 2; fi
done
summarize() {   # summarize FILE.jsonl SUMMARY: the summary table and ratios (stdout and SUMMARY)
  python3 - "$1" "$2" <<'EOF'
import json, statistics, sys
path, summary = sys.argv[1:3]
rows = [json.loads(l) for l in open(path) if l.strip()]
rounds = len({r["round"] for r in rows})
seconds = statistics.median(r["elapsed_s"] for r in rows)
names = {"a": "baseline: no election chains, no conntrackd (no event listener)",
         "e": "event-mask rules only (no election lookups), no conntrackd",
         "r": "election chains only, 0 % elected, no conntrackd",
         "o": "election chains of --old-rules, 0 % elected, no conntrackd",
         "b": "recipe, 0 % elected: election chains + conntrackd (ha/conntrackd.conf)",
         "c": "conntrackd replicating every flow (no election chains)",
         "d": "recipe, 100 % elected: every flow marked, replicated"}
by = {}
for r in rows:
    by.setdefault(r["config"], []).append(r)
med = {c: statistics.median(x["delivered_per_s"] for x in v) for c, v in by.items()}
out = []
out.append(f"bench/ha_conn_rate.sh: {path.split('/')[-1]}, {rounds} round(s) x {seconds:.1f} s per config, "
           f"load average (1 min) {min(r['loadavg1'] for r in rows)}-{max(r['loadavg1'] for r in rows)}")
out.append("new UDP flows/s delivered through the router (SNAT, every packet a new conntrack)")
out.append("")
out.append("| config | median delivered/s | min | max | median sent/s | replicated flows (r1 internal cache) | events received | netlink overrun / socket drops | ct drop / early_drop | standby: external cache created / lost msgs | conntrackd CPU s (r1 + r2) per s |")
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
order = [c for c in "aeorbcd" if c in by]
for c in order:
    v = by[c]
    d = [x["delivered_per_s"] for x in v]
    s = statistics.median(x["sent_per_s"] for x in v)
    def tot(key):
        vals = [x["conntrackd_r1"].get(key) for x in v]
        return "-" if all(q is None for q in vals) else str(sum(q or 0 for q in vals))
    nd = sum(x["netlink_drops"] for x in v)
    def tot2(key):
        vals = [x["conntrackd_r2"].get(key) for x in v]
        return "-" if all(q is None for q in vals) else str(sum(q or 0 for q in vals))
    cpu = statistics.median((x["conntrackd_cpu_s"]["r1"] + x["conntrackd_cpu_s"]["r2"]) / x["elapsed_s"] for x in v)
    out.append(f"| {c} | {med[c]:,.0f} | {min(d):,.0f} | {max(d):,.0f} | {s:,.0f} | {tot('internal_created')} | "
               f"{tot('events_received')} | {tot('netlink_overrun')} / {nd} | "
               f"{sum(x['ct_drop'] for x in v)} / {sum(x['ct_early_drop'] for x in v)} | "
               f"{tot2('external_created')} / {tot2('lost_msgs')} | {cpu:.2f} |")
out.append("")
for c in order:
    out.append(f"  {c}: {names[c]}")
out.append("")
if "a" in med:
    for c in ("e", "o", "r", "b", "c", "d"):
        if c not in med:
            continue
        per_round = []
        for rnd in sorted({x["round"] for x in rows}):
            a = [x["delivered_per_s"] for x in by["a"] if x["round"] == rnd]
            o = [x["delivered_per_s"] for x in by[c] if x["round"] == rnd]
            if a and o and a[0] > 0:
                per_round.append(o[0] / a[0])
        paired = statistics.median(per_round) if per_round else med[c] / med["a"]
        line = f"ratio {c}/a: {paired:.3f} (median of the per-round ratios; ratio of the medians " + \
               f"{med[c] / med['a']:.3f}); per round: " + ", ".join(f"{q:.3f}" for q in per_round)
        if c == "b":
            line += "\n  -> target b/a >= 0.95: " + ("MET" if paired >= 0.95 else "NOT MET") + \
                    " (judged on the median of the per-round ratios, which cancels the load drift between rounds)"
        out.append(line)
text = "\n".join(out) + "\n"
sys.stdout.write(text)
open(summary, "w").write(text)
EOF
}
if [ -n "$report" ]; then summarize "$report" "$summary"; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "ha_conn_rate.sh: needs root (CI=true: not skipping)" >&2; exit 1; fi
  echo "ha_conn_rate.sh: SKIP: needs root for network namespaces, nftables and conntrackd" >&2
  exit 77
fi
echo_bin=$build/bench/pcpd-echo
[ -x "$echo_bin" ] || { echo "ha_conn_rate.sh: $echo_bin not built (ninja -C $build pcpd-echo)" >&2; exit 2; }
for b in ip nft conntrack conntrackd python3; do
  command -v "$b" >/dev/null || { echo "ha_conn_rate.sh: missing $b" >&2; exit 2; }
done

. "$(dirname "$0")/bench_lab.sh"
bench_lab_init hacr   # rnd, tmp, started (every PID this script started), stop_pid, clean-up
cli=hcr-cli-$rnd
r1=hcr-r1-$rnd
r2=hcr-r2-$rnd
srv=hcr-srv-$rnd
declare -A ctd_pid=()
bench_extra_cleanup() {
  local pid
  # safety net: a conntrackd whose command line names our private temp dir is ours
  for pid in $(pgrep -f "conntrackd -C $tmp/" 2>/dev/null || true); do stop_pid "$pid"; done
}
log() { echo "ha_conn_rate.sh: $*" >&2; }
X() { ip netns exec "$@"; }

# --- topology: cli eth0 -- lan0 r1 wan0 -- eth0 srv; r1 sync0 -- sync0 r2 ------------------------
bench_ns "$cli" "$r1" "$r2" "$srv"
for n in "$cli" "$r1" "$r2" "$srv"; do ip -n "$n" link set lo up; done
ip link add lan0 netns "$r1" type veth peer name eth0 netns "$cli"
ip link add wan0 netns "$r1" type veth peer name eth0 netns "$srv"
ip link add sync0 netns "$r1" type veth peer name sync0 netns "$r2"
ip -n "$cli" addr add 192.0.2.10/24 dev eth0
ip -n "$r1" addr add 192.0.2.1/24 dev lan0
ip -n "$r1" addr add 203.0.113.1/24 dev wan0
ip -n "$srv" addr add 203.0.113.100/24 dev eth0
ip -n "$r1" addr add 198.51.100.1/30 dev sync0
ip -n "$r2" addr add 198.51.100.2/30 dev sync0
for l in lan0 wan0 sync0; do ip -n "$r1" link set "$l" up; done
ip -n "$r2" link set sync0 up
ip -n "$cli" link set eth0 up
ip -n "$srv" link set eth0 up
ip -n "$cli" route add default via 192.0.2.1
X "$r1" sysctl -qw net.ipv4.ip_forward=1

# router ruleset (as scripts/ha-lab.sh ha_rules) and the recipe's sysctl
{
  cat "$repo/nft-rules/example-router.nft"
  echo 'flush chain ip nat postrouting'
  echo 'add rule ip nat postrouting oifname "wan0" snat to 203.0.113.1 fully-random'
} > "$tmp/router.nft"
X "$r1" nft -f "$tmp/router.nft"
X "$r1" nft -f "$repo/nft-rules/pcpd.nft"
X "$r1" sysctl -q -p "$repo/ha/90-pcpd-conntrack.conf" >/dev/null
X "$r1" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=1
X "$r2" nft add table ip ctload   # load conntrack in r2 so its sysctl exists (the standby router)
X "$r2" sysctl -q -p "$repo/ha/90-pcpd-conntrack.conf" >/dev/null
X "$r2" nft delete table ip ctload
[ "$(X "$r1" sysctl -n net.netfilter.nf_conntrack_events)" = 1 ] || { log "nf_conntrack_events != 1"; exit 1; }
X "$srv" nft -f - <<'EOF'
table inet flood {
  counter delivered { }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr 203.0.113.1 udp dport 10000-10099 counter name delivered drop
  }
}
EOF
for p in $(seq 10000 10099); do echo "203.0.113.100 $p"; done > "$tmp/targets"
# 1000 unrelated election keys (a router with elected mappings that these flows do not match)
{
  for i in $(seq 0 999); do
    echo "add element inet pcpd elect4_dst { 203.0.113.1 . udp . $(( 20000 + i )) }"
    echo "add element inet pcpd elect4_src { 192.0.2.$(( 100 + i % 100 )) . udp . $(( 30000 + i )) }"
  done
} > "$tmp/unrelated.nft"
for p in $(seq 10000 10099); do echo "add element inet pcpd elect4_dst { 203.0.113.100 . udp . $p }"; done > "$tmp/elect-all.nft"

{ # config e: pcpd.nft's defines, then its pre_elect chain with only the event-mask rules
  grep '^define ' "$repo/nft-rules/pcpd.nft"
  echo 'flush chain inet pcpd pre_elect'
  grep '^add rule inet pcpd pre_elect .*ct event set' "$repo/nft-rules/pcpd.nft"
} > "$tmp/events-only.nft"
[ "$(grep -c 'ct event set' "$tmp/events-only.nft")" -ge 2 ] || { log "pcpd.nft: no event-mask rules found"; exit 1; }
set_rules() {   # set_rules CONFIG
  X "$r1" nft -f "$repo/nft-rules/pcpd.nft"   # idempotent: (re)creates the election chains
  X "$r1" nft flush set inet pcpd elect4_dst
  X "$r1" nft flush set inet pcpd elect4_src
  case $1 in
    a|c) X "$r1" nft delete chain inet pcpd pre_elect
         X "$r1" nft delete chain inet pcpd out_elect ;;
    b|r) X "$r1" nft -f "$tmp/unrelated.nft" ;;
    o)   X "$r1" nft -f "$old_rules"   # its pre_elect/out_elect rules replace ours
         X "$r1" nft -f "$tmp/unrelated.nft" ;;
    e)   X "$r1" nft -f "$tmp/events-only.nft" ;;
    d)   X "$r1" nft -f "$tmp/unrelated.nft"
         X "$r1" nft -f "$tmp/elect-all.nft" ;;
  esac
}

# conntrackd: ha/conntrackd.conf with private paths (and the UDP addresses swapped on r2), as
# scripts/ha-lab.sh ha_ctd_conf does
for r in r1 r2; do
  mkdir -p "$tmp/$r"
  d=$tmp/$r
  sed -e "s|^\(\s*LogFile\) .*|\1 $d/conntrackd.log|" \
    -e "s|^\(\s*LockFile\) .*|\1 $d/conntrackd.lock|" \
    -e "s|^\(\s*Path\) /var/run/conntrackd.ctl|\1 $d/conntrackd.ctl|" \
    "$repo/ha/conntrackd.conf" > "$d/conntrackd.conf"
  if [ $r = r2 ]; then
    sed -i -e 's/IPv4_address 198.51.100.1$/IPv4_address 198.51.100.X/' \
      -e 's/IPv4_Destination_Address 198.51.100.2$/IPv4_Destination_Address 198.51.100.1/' \
      -e 's/IPv4_address 198.51.100.X$/IPv4_address 198.51.100.2/' "$d/conntrackd.conf"
  fi
  grep -q "$d/conntrackd.ctl" "$d/conntrackd.conf" || { log "could not set conntrackd's UNIX Path"; exit 1; }
done
ns_of() { [ "$1" = r1 ] && echo "$r1" || echo "$r2"; }
ctd() { local r=$1; shift; X "$(ns_of "$r")" conntrackd -C "$tmp/$r/conntrackd.conf" "$@"; }
ctd_start() {   # ctd_start r1|r2
  local r=$1 ok=0
  rm -f "$tmp/$r/conntrackd.lock"
  # "ip netns exec" execs conntrackd in place, so $! is conntrackd's own PID (not a subshell's)
  ip netns exec "$(ns_of "$r")" conntrackd -C "$tmp/$r/conntrackd.conf" >> "$tmp/$r/ctd.out" 2>&1 &
  ctd_pid[$r]=$!
  started+=($!)
  for _ in $(seq 50); do ctd "$r" -s >/dev/null 2>&1 && { ok=1; break; }; sleep 0.1; done
  [ $ok = 1 ] || { log "conntrackd did not start in $r"; cat "$tmp/$r/ctd.out" >&2; exit 1; }
}
ctd_stop() {
  local r=$1
  [ -n "${ctd_pid[$r]:-}" ] || return 0
  stop_pid "${ctd_pid[$r]}"
  ctd_pid[$r]=
}
ticks() { [ -n "${ctd_pid[$1]:-}" ] && awk '{print $14 + $15}' "/proc/${ctd_pid[$1]}/stat" || echo 0; }
ctd_stats() {   # ctd_stats r1|r2: JSON object of the counters we report ({} when not running)
  [ -n "${ctd_pid[$1]:-}" ] || { echo '{}'; return; }
  { ctd "$1" -s; ctd "$1" -s runtime; } 2>/dev/null | python3 -c '
import json, re, sys
t = sys.stdin.read()
def num(pat, src=t):
    m = re.search(pat, src)
    return int(m.group(1)) if m else None
def cache(name):
    m = re.search(r"cache " + name + r":(.*?)\n\n", t, re.S)
    return m.group(1) if m else ""
print(json.dumps({
    "events_received": num(r"events received:\s+(\d+)"),
    "events_filtered": num(r"events filtered:\s+(\d+)"),
    "catch_event_failed": num(r"catch event failed:\s+(\d+)"),
    "netlink_overrun": num(r"netlink overrun:\s+(\d+)"),
    "resync_with_kernel": num(r"resync with kernel table:\s+(\d+)"),
    "internal_created": num(r"connections created:\s+(\d+)", cache("internal")),
    "internal_active": num(r"current active connections:\s+(\d+)", cache("internal")),
    "external_created": num(r"connections created:\s+(\d+)", cache("external")),
    "lost_msgs": num(r"(\d+) Lost msgs"),
    "udp_pkts_sent": num(r"(\d+) Pckts sent"),
    "udp_send_errors": num(r"(\d+) Error send"),
}))'
}
nl_drops() {   # drops on r1's NETLINK_NETFILTER sockets that joined a multicast group (event socket)
  X "$r1" cat /proc/net/netlink | awk '$2 == 12 && $4 != "00000000" {d += $9} END {print d + 0}'
}
ct_stat() {   # sum of r1's per-CPU conntrack drop counters: "drop early_drop insert_failed"
  X "$r1" conntrack -S 2>/dev/null | python3 -c '
import re, sys
s = {"drop": 0, "early_drop": 0, "insert_failed": 0}
for l in sys.stdin:
    for k in s:
        m = re.search(r"\b" + k + r"=(\d+)", l)
        if m: s[k] += int(m.group(1))
print(s["drop"], s["early_drop"], s["insert_failed"])'
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
[ -n "$out" ] || out=$repo/bench/results/ha_conn_rate-$stamp.jsonl
mkdir -p "$(dirname "$out")" "$(dirname "$summary")"
: > "$out"

# sanity: one flow gets through the router
X "$srv" nft reset counter inet flood delivered >/dev/null
X "$cli" "$echo_bin" flood --targets "$tmp/targets" --source 192.0.2.10 --seconds 0.2 >/dev/null
sleep 0.3
got=$(X "$srv" nft list counter inet flood delivered | sed -n 's/.*packets \([0-9]*\).*/\1/p')
[ "${got:-0}" -gt 0 ] || { log "no packet crossed the router"; exit 1; }

measure() {   # measure CONFIG ROUND
  local cfg=$1 round=$2 f after ta1 ta2 tb1 tb2 nl0 nl1 cs0 cs1 s1 s2 load
  ctd_stop r1; ctd_stop r2
  set_rules "$cfg"
  X "$r1" conntrack -F >/dev/null 2>&1 || true
  sleep 0.3
  if [[ $cfg == [bcd] ]]; then ctd_start r2; ctd_start r1; sleep 0.5; fi
  X "$srv" nft reset counter inet flood delivered >/dev/null
  nl0=$(nl_drops); cs0=$(ct_stat); ta1=$(ticks r1); tb1=$(ticks r2)
  load=$(cut -d' ' -f1 /proc/loadavg)
  f=$(X "$cli" "$echo_bin" flood --targets "$tmp/targets" --source 192.0.2.10 --seconds "$seconds")
  sleep 0.3
  after=$(X "$srv" nft list counter inet flood delivered | sed -n 's/.*packets \([0-9]*\).*/\1/p')
  ta2=$(ticks r1); tb2=$(ticks r2); nl1=$(nl_drops); cs1=$(ct_stat)
  s1=$(ctd_stats r1); s2=$(ctd_stats r2)
  python3 - "$f" <<EOF | tee -a "$out" | sed 's/^/  /' >&2
import json, sys
j = json.loads(sys.argv[1])
j["op"] = "ha_conn_rate"
j["config"] = "$cfg"
j["round"] = $round
j["loadavg1"] = float("$load")
j["delivered"] = int("${after:-0}")
j["delivered_per_s"] = round(j["delivered"] / j["elapsed_s"], 1)
c0 = [int(x) for x in "$cs0".split()]; c1 = [int(x) for x in "$cs1".split()]
j["ct_drop"], j["ct_early_drop"], j["ct_insert_failed"] = [b - a for a, b in zip(c0, c1)]
j["netlink_drops"] = $nl1 - $nl0
tck = $(getconf CLK_TCK)
j["conntrackd_cpu_s"] = {"r1": ($ta2 - $ta1) / tck, "r2": ($tb2 - $tb1) / tck}
j["conntrackd_r1"] = json.loads('$s1')
j["conntrackd_r2"] = json.loads('$s2')
print(json.dumps(j))
EOF
}

log "namespaces $cli $r1 $r2 $srv; $rounds round(s) x configs [$configs] x ${seconds}s; out $out"
set -- $configs
ncfg=$#
cfgs=("$@")
for round in $(seq 1 "$rounds"); do
  for k in $(seq 0 $(( ncfg - 1 ))); do
    cfg=${cfgs[$(( (k + round - 1) % ncfg ))]}
    log "round $round config $cfg"
    measure "$cfg" "$round"
  done
done
ctd_stop r1; ctd_stop r2

summarize "$out" "$summary"
