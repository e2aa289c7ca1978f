#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_busy.sh: a busy router. The router namespace holds 50,000 unrelated conntrack entries (a
# NAT44 office router's flows, bench/ct_fill.cpp) besides the lab's own; pcpd's conntrack work
# (marking an election's existing connections, dropping a deleted mapping's) runs in its worker,
# so no request waits for it:
#   - a plain MAP sent right behind a MAP with CHECKPOINT_REQUIRED is answered within 50 ms,
#     and so is the election itself;
#   - plain MAPs sent during the 600 ms after another mapping's delete are answered within 50 ms;
#   - an idle established connection of a mapping (no packet the per-packet rule could see) is
#     marked elected|sticky|mapped within 1 s of the election;
#   - a deleted mapping's connection is gone from the conntrack table within 1 s;
#   - the worker walked the table once (at its first round), then found each mapping's
#     connections by exact lookups of what pcpd.nft announced; the kernel handed it only
#     mapped-bit entries, never the 50,000 others.
# Before the worker (a conntrack dump inside the request loop) the first two took 0.4-1.6 s.
# Requirements: R-CKPT-4/5 (elections honoured on a renewal), R-CKPT-6 (an election's existing
# connections reach the backup: marked now), R-LIFE-4 (a delete ends the mapping's flows).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_busy
lab_up
BUSY_TOOL=$LAB_SRC/tests/integration/busy_tool.py
FILL=${PCPD_BUILD_DIR:-$LAB_SRC/build}/bench/pcpd-ct-fill
[ -x "$FILL" ] || lab_die "pcpd-ct-fill not built at $FILL (ninja -C build pcpd-ct-fill)"
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
r=$LAB_DIR/r
entries=50000

lab_log "filling the router's conntrack table with $entries entries"
lab_rtr "$FILL" "$entries" --timeout 900 >"$r.fill" 2>&1
lab_ev <"$r.fill"
check "the router namespace holds at least $entries conntrack entries" \
  lab_ge conntrack_entries "$(lab_rtr conntrack -C 2>/dev/null)" "$entries"

lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8080 "$LAB_DIR/l8080.log"

lab_log "MAP tcp 8080 and an idle connection through it from the remote host"
n1=$(lab_nonce)
check "MAP 8080 exits 0" lab_pc "$r.map" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n1"
ext=$(lab_json "$r.map" external_port)
[[ "$ext" =~ ^[0-9]+$ ]] || ext=0
lab_spawn "$LAB_WAN" "$r.hold" python3 "$BUSY_TOOL" hold --to 203.0.113.1 --port "$ext" --sport 41234 --seconds 120
for _ in $(seq 50); do grep -q connected "$r.hold" && break; sleep 0.1; done
check "the remote host holds an established connection to 203.0.113.1:$ext" grep -q connected "$r.hold"
mark_of() { lab_rtr conntrack -L -p tcp --sport 41234 2>/dev/null | sed -n 's/.*mark=\([0-9]*\).*/\1/p' | head -1; }
sleep 0.5
m0=$(mark_of)
echo "  mark of the idle connection before the election: ${m0:-none}"
check "the connection carries the mapped bit (pcpd.nft) and no election bit" lab_eq mark "$m0" 8

lab_log "election of the mapping (same nonce, CHECKPOINT_REQUIRED); the connection stays idle"
t0=$(date +%s%N)
check "R-CKPT-5 MAP --checkpoint exits 0" lab_pc "$r.elect" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n1" --checkpoint
marked=
for _ in $(seq 100); do
  [ "$(mark_of)" = 11 ] && { marked=$((($(date +%s%N) - t0) / 1000000)); break; }
  sleep 0.02
done
echo "  idle connection marked 0xb after ${marked:-never} ms (mark now $(mark_of))"
check "R-CKPT-6 the idle connection is marked elected|sticky|mapped within 1 s" \
  bash -c "[ -n '$marked' ] && [ '$marked' -lt 1000 ]"

lab_log "a plain MAP right behind an election, 5 times"
lab_cli python3 "$BUSY_TOOL" race --server 192.0.2.1 --client 192.0.2.10 --elect-port 9100 --plain-port 9200 \
  --count 5 >"$r.race"
lab_ev <"$r.race"
plain_max=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(max(d["plain_ms"] or [1e9]))' "$r.race")
elect_max=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(max(d["elect_ms"] or [1e9]))' "$r.race")
honoured=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["honoured"])' "$r.race")
check "a plain MAP sent with an election is answered within 50 ms (max ${plain_max} ms)" \
  python3 -c "import sys; sys.exit(0 if $plain_max < 50 else 1)"
check "the election itself is answered within 50 ms (max ${elect_max} ms)" \
  python3 -c "import sys; sys.exit(0 if $elect_max < 50 else 1)"
check "R-CKPT-4 all 5 elections honoured (option echoed)" lab_eq honoured "$honoured" 5

lab_log "plain MAPs during the 600 ms after another mapping's delete, 3 times"
lab_cli python3 "$BUSY_TOOL" after-delete --server 192.0.2.1 --client 192.0.2.10 --port 9300 --plain-port 9400 \
  --count 3 --window 600 >"$r.del"
lab_ev <"$r.del"
del_max=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(max(d["plain_ms"] or [1e9]))' "$r.del")
del_n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["plain_ms"]), d["lost"], d["deleted"])' "$r.del")
echo "  answered, lost, deletes: $del_n"
check "every plain MAP after a delete is answered within 50 ms (max ${del_max} ms)" \
  python3 -c "import sys; sys.exit(0 if $del_max < 50 else 1)"
check "R-LIFE-4 the 3 deletes answered SUCCESS lifetime 0, no plain MAP lost" \
  bash -c "[ \"\$(echo $del_n | cut -d' ' -f2,3)\" = '0 3' ]"

lab_log "delete of the elected mapping: its connection goes"
t0=$(date +%s%N)
check "R-LIFE-4 delete exits 0" lab_pc "$r.gone" -s 192.0.2.1 map -p tcp -i 8080 -l 0 -n "$n1"
gone=
for _ in $(seq 100); do
  [ -z "$(mark_of)" ] && { gone=$((($(date +%s%N) - t0) / 1000000)); break; }
  sleep 0.02
done
echo "  connection gone after ${gone:-never} ms"
check "R-LIFE-4 the deleted mapping's connection is gone within 1 s" \
  bash -c "[ -n '$gone' ] && [ '$gone' -lt 1000 ]"

lab_log "what the conntrack worker did (pcpctl stats, read once: a scrape may queue a count walk)"
pcpctl stats --format prometheus >"$r.stats"
st() { awk -v k="$1" '$1 == k {print $2; exit}' "$r.stats"; }
for k in pcpd_conntrack_walks_total pcpd_conntrack_lookups_total pcpd_conntrack_visited_total \
  pcpd_conntrack_learned_total pcpd_conntrack_known pcpd_conntrack_errors_total pcpd_conntrack_last_walk_seconds; do
  echo "  $k $(st "$k")"
done
visited=$(st pcpd_conntrack_visited_total)
walks=$(st pcpd_conntrack_walks_total)
check "one walk of the table (the first round, before pcpd knew every mapped connection), then exact lookups" \
  lab_eq walks "${walks:-}" 1
check "pcpd.nft announced the mappings' connections (learned >= 1)" lab_ge learned "$(st pcpd_conntrack_learned_total)" 1
check "the kernel handed pcpd only mapped-bit entries (visited ${visited:-?} < 100, the table holds $entries)" \
  python3 -c "import sys; sys.exit(0 if 0 < float('${visited:-0}') < 100 else 1)"
check "no conntrack errors" lab_eq errors "$(st pcpd_conntrack_errors_total)" 0
check "the unrelated entries are still there" lab_ge conntrack_entries "$(lab_rtr conntrack -C 2>/dev/null)" "$entries"
lab_finish
