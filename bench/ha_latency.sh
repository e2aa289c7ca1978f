#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/ha_latency.sh: the latency a hot standby adds to an honoured CHECKPOINT_REQUIRED MAP
# (RFC 7767 §3: the response waits for the standby's ack) versus a plain MAP, p50 and p99.
#
# Usage: sudo bench/ha_latency.sh [--build DIR] [--count N] [--out FILE]
#   --build DIR   build directory with src/pcpd/pcpd, src/pcpctl/pcpctl, src/pcpc/pcpc (default: build)
#   --count N     requests per kind (default 500), interleaved plain/checkpoint
#   --out FILE    default bench/results/ha_latency.txt
# Lab: scripts/ha-lab.sh (two routers r1/r2, sync link 198.51.100.0/30 on veth), pcpd with [ha]
# on both, roles set by hand (r1 `pcpctl ha primary`, r2 `ha backup`; no keepalived). A client in
# its own namespace sends MAP creates to r1 (192.0.2.2) one at a time over UDP and times each from
# send to response (Python, perf_counter_ns): plain MAP vs MAP with CHECKPOINT_REQUIRED (honoured:
# the response carries the option, checked). Each kind creates N distinct mappings; the table
# stays below 2N. Rate limits and checkpoint quotas are lifted for the run.
# shellcheck disable=SC2034,SC2154  # HA_* are read and set by scripts/ha-lab.sh
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
count=500
out=$repo/bench/results/ha_latency.txt
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "${2:?--build DIR}" && pwd); shift ;;
    --count) count=${2:?--count N}; shift ;;
    --out) out=${2:?--out FILE}; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
export PCPD_BUILD_DIR=$build
LAB_WATCHDOG=$((120 + count / 20))
export LAB_WATCHDOG
. "$repo/scripts/ha-lab.sh"

HA_CHECKPOINT_CONF="max_total = 1000000
max_per_client = 1000000
rate_per_client = 1000000.0
burst_per_client = 1000000.0

[limits]
client_rate = 0
global_rate = 0"
HA_PEER_CONF='ack_timeout_ms = 200'
ha_init ha_latency
ha_up
up() { ha_ctl r1 stats --format prometheus | grep -q '^pcpd_ha_peer_up 1'; }
cat >"$LAB_DIR/client.py" <<'EOF'
import json, os, socket, struct, sys, time
n, dst, base = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
srv, client = "192.0.2.2", "192.0.2.10"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((client, 0))
s.settimeout(2.0)
cl = b"\0" * 10 + b"\xff\xff" + socket.inet_aton(client)
def req(port, ckpt):
    nonce = os.urandom(12)
    m = struct.pack(">BBHI", 2, 1, 0, 600) + cl          # version 2, MAP, lifetime 600
    m += nonce + struct.pack(">B3xHH", 6, port, 0) + b"\0" * 10 + b"\xff\xff" + b"\0" * 4
    if ckpt:
        m += bytes([192, 0, 0, 0])                        # CHECKPOINT_REQUIRED, length 0
    return m, nonce
def has_ckpt(d):
    i = 60
    while i + 4 <= len(d):
        code, ln = d[i], struct.unpack(">H", d[i + 2:i + 4])[0]
        if code == 192: return True
        i += 4 + (ln + 3) // 4 * 4
    return False
res = {"plain": [], "checkpoint": []}
bad = 0
for i in range(n * 2):
    ck = i % 2 == 1
    m, nonce = req(base + i, ck)
    t0 = time.perf_counter_ns()
    s.sendto(m, (srv, 5351))
    while True:
        try: d = s.recv(1100)
        except socket.timeout: d = None; break
        if len(d) >= 60 and d[24:36] == nonce: break
    t1 = time.perf_counter_ns()
    if d is None or d[3] != 0 or has_ckpt(d) != ck:
        bad += 1; continue
    res["checkpoint" if ck else "plain"].append((t1 - t0) / 1000.0)
json.dump({"bad": bad, **res}, open(dst, "w"))
EOF


# Phase 1: r1 alone, no [ha]: what an election costs by itself (nft sets + ct marking).
ha_pcpd_start r1 mappings.max_per_client=1000000 'daemon.log_level="info"' || lab_die "pcpd r1"
ip netns exec "$HA_CLI" python3 "$LAB_DIR/client.py" "$count" "$LAB_DIR/solo.json" 10000 || lab_die "client (solo)"
lab_kill "$HA_PCPD_PID_r1" TERM
# Phase 2: r1 primary with [ha], r2 backup: the election also waits for r2's ack.
ha_peer_key
ha_pcpd_start r1 mappings.max_per_client=1000000 'daemon.log_level="info"' || lab_die "pcpd r1"
ha_pcpd_start r2 mappings.max_per_client=1000000 'daemon.log_level="info"' || lab_die "pcpd r2"
ha_ctl r1 ha primary | lab_ev
ha_ctl r2 ha backup | lab_ev
ha_waitfor 10 up || lab_die "peer link did not come up"
ip netns exec "$HA_CLI" python3 "$LAB_DIR/client.py" "$count" "$LAB_DIR/lat.json" 30000 || lab_die "client (ha)"

python3 - "$LAB_DIR/lat.json" "$count" "$LAB_DIR/solo.json" >"$LAB_DIR/report.txt" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
solo = json.load(open(sys.argv[3]))
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
lines = ["# bench/ha_latency.sh: MAP create latency at the client, sequential, us",
         "# r1 primary with [ha] peer r2 (veth sync link, ack_timeout_ms 200), %s requests per kind" % sys.argv[2],
         "%-28s %8s %10s %10s %10s" % ("kind", "n", "p50_us", "p99_us", "mean_us")]
st = {}
for k in ("plain", "checkpoint"):
    v = r[k]; st[k] = (pct(v, 50), pct(v, 99))
    lines.append("%-28s %8d %10.1f %10.1f %10.1f" % (k if k == "plain" else "checkpoint (honoured)", len(v), st[k][0], st[k][1], sum(v) / len(v)))
lines.append("%-28s %8s %10.1f %10.1f" % ("added by the checkpoint", "", st["checkpoint"][0] - st["plain"][0], st["checkpoint"][1] - st["plain"][1]))
lines.append("failed or not honoured: %d" % (r["bad"] + solo["bad"]))
lines.append("# baseline, r1 without [ha] (no standby, nothing waits):")
s50, s99 = pct(solo["plain"], 50), pct(solo["plain"], 99)
c50, c99 = pct(solo["checkpoint"], 50), pct(solo["checkpoint"], 99)
lines.append("%-28s %8d %10.1f %10.1f" % ("plain, no [ha]", len(solo["plain"]), s50, s99))
lines.append("%-28s %8d %10.1f %10.1f" % ("checkpoint, no [ha]", len(solo["checkpoint"]), c50, c99))
lines.append("%-28s %8s %10.1f %10.1f" % ("added by the standby wait", "", st["checkpoint"][0] - c50, st["checkpoint"][1] - c99))
print("\n".join(lines))
EOF
ha_ctl r1 stats --format prometheus | grep -E 'pcpd_ha_checkpoint_waits_total' | sed 's/^/# /' >>"$LAB_DIR/report.txt"
{ echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cpus"; cat "$LAB_DIR/report.txt"; } | tee "$out"
check "every request answered, the checkpoint ones honoured" grep -q '^failed or not honoured: 0$' "$out"
lab_finish
