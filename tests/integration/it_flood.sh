#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_flood.sh: one client address floods pcpd with ~100,000 datagrams/s of mixed garbage and valid
# MAP requests (tests/tools/pcp_flood.cpp, sendmmsg) while other client addresses of the same LAN
# create and refresh mappings one request at a time and measure each request's latency.
# Asserts: the others' p99 < 10 ms, none of their requests lost or refused, every one of their
# mappings in `pcpctl list --json` and in `nft list table inet pcpd`, the flooder's excess counted
# in `pcpctl stats` (pcpd_refused_total{reason="rate_limited_client"}) and never answered.
# Requirements: RFC 6887 §18.1 rate limiting, R-QUOTA-5, R-SEC-3 (per-client request rate limit
# before any kernel work; refused requests dropped silently), R-HDR-10 (nothing lost).
# Runs in about 20 s. Environment: FLOOD_RATE (100000), FLOOD_SECONDS (10), FLOOD_RT (1: pcpd
# and the probes SCHED_FIFO, see below), FLOOD_CLIENT_RATE ([limits] client_rate, 100; 0 shows
# the test failing without the per-client limit).
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-90}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_flood
bdir=${PCPD_BUILD_DIR:-$LAB_SRC/build}
FLOOD_BIN=${FLOOD_BIN:-$bdir/tests/pcp_flood}
PCPCTL_BIN=${PCPCTL_BIN:-$bdir/src/pcpctl/pcpctl}
[ -x "$FLOOD_BIN" ] || lab_die "pcp_flood not found at $FLOOD_BIN (build first: ninja -C $bdir pcp_flood)"
[ -x "$PCPCTL_BIN" ] || lab_die "pcpctl not found at $PCPCTL_BIN (build first: ninja -C $bdir pcpctl)"
command -v nproc >/dev/null && lab_log "cpus: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
lab_up
RATE=${FLOOD_RATE:-100000}
SECS=${FLOOD_SECONDS:-10}
FLOODER=192.0.2.10
OTHERS4=(192.0.2.11 192.0.2.12 192.0.2.13)
OTHER6=2001:db8:1::11
for a in "${OTHERS4[@]}"; do ip -n "$LAB_CLI" addr add "$a/24" dev eth0; done
ip -n "$LAB_CLI" addr add "$OTHER6/64" dev eth0 nodad

conf=$LAB_DIR/pcpd.conf
ctl_sock=$LAB_DIR/ctl.sock
# log_level info: the daemon's debug log writes a line per datagram, a flood of its own.
# mappings.max_per_client 64: the flooder's valid MAPs create up to that many mappings; with the
# default 256 `pcpctl list --json` outgrows the control socket's 64 KiB reply limit
# (src/ctl/ctl_socket.cpp kMaxRequest, a separate bug).
lab_config "$conf" 'daemon.log_level="info"' "daemon.control_socket=\"$ctl_sock\"" 'announce.enabled=false' \
  mappings.max_per_client=64
# [limits] at their documented defaults, written out so that the test says what it tests
# (lab_config only knows the tables it was written for).
# FLOOD_CLIENT_RATE=0 (limit off) shows what the limit buys: the test then fails.
cat >>"$conf" <<EOF
[limits]
client_rate = ${FLOOD_CLIENT_RATE:-100}
client_burst = 300
global_rate = 10000
global_burst = 20000
EOF
lab_pcpd_start "$conf"
# The lab puts the flooder, pcpd and the probing clients on one machine (often a shared CI
# runner with other jobs), where in reality they are separate hosts. pcpd and the probes run
# SCHED_FIFO (chrt -f 10) so that what is measured is pcpd under the flood, not how the machine's
# scheduler shares 2 CPUs with compilers and other tests (on a loaded runner, baseline p99s of
# 30-50 ms without any flood were seen otherwise). The flooder stays SCHED_OTHER; its packets'
# kernel receive work runs in its context. FLOOD_RT=0 runs everything at normal priority.
if [ "${FLOOD_RT:-1}" = 1 ]; then
  RT=(chrt -f 10)
  chrt -f -p 10 "$LAB_PCPD_PID" >/dev/null || lab_die "chrt -f -p 10 pcpd"
else
  RT=()
fi
ctl() { lab_rtr "$PCPCTL_BIN" --socket "$ctl_sock" "$@"; }
srcargs=()
for a in "${OTHERS4[@]}"; do srcargs+=(--source "$a"); done
# Per source 4 mappings (TCP, internal ports BASE..BASE+3), one request at a time: IPv4 a request
# every 5 ms round-robin over 3 sources (67/s each), IPv6 one every 20 ms (50/s): below the
# per-client rate of 100/s.
probe() { # probe OUT BASE_PORT SECONDS
  timeout 60 ip netns exec "$LAB_CLI" "${RT[@]}" "$FLOOD_BIN" probe --server 192.0.2.1 "${srcargs[@]}" \
    --mappings 4 --base-port "$2" --duration "$3" --interval-ms 5 >"$1.v4" 2>"$1.err" &
  local p4=$!
  timeout 60 ip netns exec "$LAB_CLI" "${RT[@]}" "$FLOOD_BIN" probe --server 2001:db8:1::1 --source "$OTHER6" \
    --mappings 4 --base-port "$2" --duration "$3" --interval-ms 20 >"$1.v6" 2>>"$1.err" &
  local p6=$!
  LAB_PIDS+=("$p4" "$p6")
  wait "$p4" "$p6"
  lab_ev <"$1.err"
  python3 - "$1" <<'EOF'
import json, sys
base = sys.argv[1]
a = json.load(open(base + ".v4"))
b = json.load(open(base + ".v6"))
out = {k: a[k] + b[k] for k in ("requests", "answered", "lost", "failed", "retransmits")}
out["failures"] = a["failures"] + b["failures"]
out["mappings"] = a["mappings"] + b["mappings"]
# Each probe reports its own percentiles; the larger of the two is an upper bound of the
# percentile over both.
out["p50_ms"] = max(a["p50_ms"], b["p50_ms"])
out["p99_ms"] = max(a["p99_ms"], b["p99_ms"])
out["max_ms"] = max(a["max_ms"], b["max_ms"])
out["v4"] = {k: a[k] for k in ("requests", "p50_ms", "p90_ms", "p99_ms", "max_ms")}
out["v6"] = {k: b[k] for k in ("requests", "p50_ms", "p90_ms", "p99_ms", "max_ms")}
json.dump(out, open(base, "w"))
EOF
}
jget() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"; }
gt() { echo "    $1: got '$2', want > '$3'"; python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$2" "$3"; }
lt() { echo "    $1: got '$2', want < '$3'"; python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$2" "$3"; }
stat_of() { awk -v k="$2" '$1 == k {print $2}' "$1"; }
udp_errors() { lab_rtr cat /proc/net/snmp | awk '/^Udp:/ {n++; if (n == 1) for (i = 1; i <= NF; i++) h[i] = $i; else for (i = 1; i <= NF; i++) if (h[i] == "RcvbufErrors") print $i}'; }

###########################################################################
lab_log "baseline: ${OTHERS4[*]} $OTHER6 create 4 mappings each and refresh them for 3 s, no flood"
probe "$LAB_DIR/base" 30000 3
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("mappings"); print(json.dumps(d))' "$LAB_DIR/base" | lab_ev
check "baseline: no request lost or refused" \
  lab_eq lost+failed "$(jget "$LAB_DIR/base" lost)+$(jget "$LAB_DIR/base" failed)" 0+0

###########################################################################
lab_log "flood: $FLOODER sends $RATE datagrams/s for $SECS s; the others create and refresh meanwhile"
rcvbuf_before=$(udp_errors)
lab_spawn "$LAB_CLI" "$LAB_DIR/flood.json" "$FLOOD_BIN" flood --server 192.0.2.1 --source "$FLOODER" \
  --rate "$RATE" --duration "$SECS"
flood_pid=$LAB_LASTPID
sleep 1
probe "$LAB_DIR/during" 31000 $((SECS - 3))
ctl stats --format prometheus >"$LAB_DIR/stats.mid" 2>&1
for _ in $(seq 1 $((SECS * 10 + 50))); do lab_ours "$flood_pid" || break; sleep 0.1; done
wait "$flood_pid" 2>/dev/null
rcvbuf_after=$(udp_errors)
lab_log "flooder:"
lab_ev <"$LAB_DIR/flood.json"
lab_log "the others during the flood:"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("mappings"); print(json.dumps(d))' "$LAB_DIR/during" | lab_ev
echo "    router UDP receive-buffer drops during the flood: $((rcvbuf_after - rcvbuf_before))"
sent=$(jget "$LAB_DIR/flood.json" sent)
frate=$(jget "$LAB_DIR/flood.json" rate)
answers=$(jget "$LAB_DIR/flood.json" answers)
# A flood is what the rest needs: 200 times the per-client limit. A loaded machine (a CPU hog
# beside the suite) slows the sender itself, so the asked rate is reported, not required.
check "the flooder sent more than 20,000 datagrams/s, 200x the client limit (asked $RATE)" gt rate "$frate" 20000
check "R-HDR-10 no request of the others lost (3 s with retransmissions every 250 ms)" \
  lab_eq lost "$(jget "$LAB_DIR/during" lost)" 0
check "no request of the others refused or failed (all SUCCESS)" \
  lab_eq failed "$(jget "$LAB_DIR/during" failed)" 0
check "R-QUOTA-5 the others' p99 latency during the flood is below 10 ms" \
  lt p99_ms "$(jget "$LAB_DIR/during" p99_ms)" 10

###########################################################################
lab_log "the others' mappings, from before and during the flood, are all installed"
ctl list --json >"$LAB_DIR/list.json" 2>&1
lab_nft_table >"$LAB_DIR/table.txt" 2>&1
missing() { # missing SOURCE(list|nft): prints the probe mappings absent from pcpctl list / nft
  python3 - "$1" "$LAB_DIR/base" "$LAB_DIR/during" "$LAB_DIR/list.json" "$LAB_DIR/table.txt" <<'EOF'
import json, sys
what, base, during, listf, tablef = sys.argv[1:]
want = json.load(open(base))["mappings"] + json.load(open(during))["mappings"]
have = {(m["internal"], m["protocol"], m["external"]) for m in json.load(open(listf))}
table = open(tablef).read()
bad = 0
for m in want:
    src, port, ext = m["source"], m["internal_port"], m["external_port"]
    if ext == 0:
        print(f"    {src} {port}: never created"); bad += 1; continue
    v4 = ":" not in src
    internal = f"{src}:{port}" if v4 else f"[{src}]:{port}"
    external = f"{m['external_addr']}:{ext}" if v4 else f"[{m['external_addr']}]:{ext}"
    if what == "list" and (internal, "tcp", external) not in have:
        print(f"    {internal} -> {external}: not in pcpctl list"); bad += 1
    if what == "nft" and f"{src} . tcp . {port}" not in table:
        print(f"    {src} . tcp . {port}: not in nft list table inet pcpd"); bad += 1
print(f"    {len(want)} mappings checked, {bad} missing")
sys.exit(1 if bad else 0)
EOF
}
check "R-HDR-10 every mapping of the others (32) is in pcpctl list --json with its external port" missing list
check "R-HDR-10 every mapping of the others (32) is in nft list table inet pcpd" missing nft

###########################################################################
lab_log "counters"
ctl stats --format prometheus >"$LAB_DIR/stats" 2>&1
grep -E '^pcpd_(refused|dropped|requests|natpmp_requests|responses)_total' "$LAB_DIR/stats" | grep -v ' 0$' | lab_ev
refused=$(stat_of "$LAB_DIR/stats" 'pcpd_refused_total{reason="rate_limited_client"}')
refused_global=$(stat_of "$LAB_DIR/stats" 'pcpd_refused_total{reason="rate_limited_global"}')
# The flooder may pass 300 (burst) + 100 per second; everything else it sent that reached the
# socket is refused. Kernel receive-buffer drops never reach pcpd and are not counted.
allowed=$((300 + 100 * (SECS + 2)))
kernel_drops=$((rcvbuf_after - rcvbuf_before))
check "R-QUOTA-5 pcpctl stats counts the flooder's refusals (>= sent - allowed - kernel drops)" \
  lab_ge rate_limited_client "$refused" $((sent - allowed - kernel_drops))
check "R-SEC-3 the flood of one client did not touch the global limit" \
  lab_eq rate_limited_global "$refused_global" 0
check "RFC 6887 §18.1 refused requests are not answered (flooder got <= $allowed answers)" \
  eval "echo '    answers to the flooder: $answers'; [ '$answers' -le '$allowed' ]"
check "pcpd is still running" kill -0 "$LAB_PCPD_PID"
lab_log "summary: flood $(printf '%.0f' "$frate") datagrams/s for $SECS s ($sent sent, $refused refused, $kernel_drops kernel drops); others p50 $(jget "$LAB_DIR/during" p50_ms) ms, p99 $(jget "$LAB_DIR/during" p99_ms) ms over $(jget "$LAB_DIR/during" requests) requests (baseline p50 $(jget "$LAB_DIR/base" p50_ms) ms, p99 $(jget "$LAB_DIR/base" p99_ms) ms)"
lab_finish
