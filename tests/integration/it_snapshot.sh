#!/usr/bin/env bash
# it_snapshot.sh: the restart snapshot (issue 7, state_dir/mappings.snapshot). pcpd stopped with
# SIGTERM writes its table; the next start restores from it without dumping the nft sets when
# the ruleset generation id is unchanged, and keeps nonces, ports and the epoch. Fallbacks to the
# nft dump, each with its reason in the log and a complete recovery: a ruleset change between
# stop and start (generation id differs), a corrupt snapshot, kill -9 (no snapshot).
# Requirements: R-OWN-5 (nonce survives a restore), R-OWN-2 (NOT_AUTHORIZED for another nonce),
# R-EPOCH-3 (continuous after a complete restore), R-SEC-4 (same external port after restart).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_snapshot
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
snap=$LAB_DIR/state/mappings.snapshot
# same_list A B: two `pcpctl list --json` outputs hold the same mappings, every field equal but
# the remaining lifetime (which counts down).
same_list() {
  python3 - "$1" "$2" <<'PY'
import json, sys
def load(f):
    return sorted(json.dumps({k: v for k, v in m.items() if k != "remaining"}, sort_keys=True)
                  for m in json.load(open(f)))
a, b = load(sys.argv[1]), load(sys.argv[2])
print(f"    {len(a)} vs {len(b)} mappings")
for line in sorted(set(a) ^ set(b)):
    print("    differs:", line)
sys.exit(0 if a == b and len(a) > 0 else 1)
PY
}
lab_pcpd_start "$conf"

lab_log "three mappings: MAP v4 with FILTER and DESCRIPTION, PEER, IPv6 pinhole"
lab_three_mappings "snapshot web"

# after_restart TAG: the mappings are all there with their nonces (refresh with the own nonce
# keeps the port, another nonce is refused) and the kernel holds the same elements.
after_restart() {
  local tag=$1
  lab_nft_elements >"$LAB_DIR/after-$tag.txt"
  check "$tag: every element is still in inet pcpd" diff -q "$LAB_DIR/before.txt" "$LAB_DIR/after-$tag.txt"
  check "$tag: R-OWN-5 MAP refresh with the old nonce exits 0" lab_pc "$r.map-$tag" -s 192.0.2.1 map -p tcp \
    -i 8080 -l 900 -n "$n1" --filter 203.0.113.100/32 --description "snapshot web"
  check "$tag: R-SEC-4 MAP refresh keeps the external port" lab_eq external_port \
    "$(lab_json "$r.map-$tag" external_port)" "$ext"
  check "$tag: R-EPOCH-3 epoch continuous" lab_ge epoch "$(lab_json "$r.map-$tag" epoch)" "$epoch1"
  check "$tag: R-OWN-5 PEER refresh with the old nonce exits 0" lab_pc "$r.peer-$tag" -s 192.0.2.1 peer -p tcp \
    -i 40001 -r 203.0.113.100:9000 -l 900 -n "$n2"
  check "$tag: ... PEER external port $pext" lab_eq external_port "$(lab_json "$r.peer-$tag" external_port)" "$pext"
  check "$tag: R-OWN-5 pinhole refresh with the old nonce exits 0" lab_pc "$r.pin-$tag" -s 2001:db8:1::1 map \
    -p tcp -i 8090 -l 900 -n "$n3"
  lab_pc "$r.bad-$tag" -s 192.0.2.1 map -p tcp -i 8080 -l 900 -n "$bad"
  check "$tag: R-OWN-2 MAP with another nonce: NOT_AUTHORIZED" lab_eq result \
    "$(lab_json "$r.bad-$tag" result)" NOT_AUTHORIZED
  lab_pc "$r.badpin-$tag" -s 2001:db8:1::1 map -p tcp -i 8090 -l 900 -n "$bad"
  check "$tag: R-OWN-2 pinhole with another nonce: NOT_AUTHORIZED" lab_eq result \
    "$(lab_json "$r.badpin-$tag" result)" NOT_AUTHORIZED
}

# stop_term: SIGTERM, then the stopped pcpd's log must say it wrote all 3 mappings.
stop_term() {
  local log=$LAB_PCPD_LOG
  lab_pcpd_stop
  grep 'mappings.snapshot' "$log" | lab_ev
  check "$1: SIGTERM wrote the snapshot with 3 mappings" grep -q 'mappings.snapshot_written.*mappings=3 ' "$log"
  check "$1: $snap exists (no .tmp left)" bash -c "[ -s '$snap' ] && [ ! -e '$snap.tmp' ]"
}

lab_log "case 1: SIGTERM, start again: restored from the snapshot, no dump"
pcpctl list --json >"$LAB_DIR/list.before.json"
stop_term snapshot
lab_pcpd_start "$conf"
pcpctl list --json >"$LAB_DIR/list.snapshot.json"
check "snapshot: pcpctl list after the restart = before (nonce, filters, description, lifetime, flags)" \
  same_list "$LAB_DIR/list.before.json" "$LAB_DIR/list.snapshot.json"
lab_rtr nft -j list table inet pcpd >"$LAB_DIR/nft.snapshot.json"
check "snapshot: R-HDR-10 restored table and inet pcpd match element for element" \
  python3 "$LAB_SRC/tests/integration/robust_tool.py" consistency --list "$LAB_DIR/list.snapshot.json" \
  --nft "$LAB_DIR/nft.snapshot.json" --expect 3
grep 'mappings\.\|epoch\.' "$LAB_PCPD_LOG" | lab_ev
check "snapshot: restored from the snapshot, all 3" \
  grep -q 'mappings.recovered source=snapshot found=3 restored=3 conflicts=0' "$LAB_PCPD_LOG"
check_not "snapshot: no nft set dump (nft.recovered) at this start" grep -q 'nft.recovered' "$LAB_PCPD_LOG"
check "snapshot: the file is gone once read" bash -c "[ ! -e '$snap' ]"
check "snapshot: epoch continued" grep -q 'epoch.continued' "$LAB_PCPD_LOG"
after_restart snapshot

lab_log "case 2: SIGTERM, a ruleset change (nft add element) before the start: nft dump"
stop_term generation
# Any committed transaction bumps the generation id; this one adds an element to a set of
# another table (pcpd's own sets stay as pcpd left them).
lab_rtr nft add table inet snapcheck
lab_rtr nft add set inet snapcheck s '{ type ipv4_addr; }'
lab_rtr nft add element inet snapcheck s '{ 198.51.100.7 }'
lab_rtr nft delete table inet snapcheck
lab_pcpd_start "$conf"
grep 'mappings\.\|nft.recovered' "$LAB_PCPD_LOG" | lab_ev
check "generation: snapshot refused, reason nft_generation_changed" \
  grep -q 'mappings.snapshot_unused reason=nft_generation_changed' "$LAB_PCPD_LOG"
check "generation: recovered by the nft dump, all 3" \
  grep -q 'mappings.recovered source=nft_dump found=3 restored=3 conflicts=0' "$LAB_PCPD_LOG"
check "generation: the refused file is gone" bash -c "[ ! -e '$snap' ]"
after_restart generation

lab_log "case 3: SIGTERM, the snapshot cut in half before the start: nft dump, no crash"
stop_term corrupt
size=$(stat -c %s "$snap")
truncate -s $((size / 2)) "$snap"
lab_pcpd_start "$conf"
grep 'mappings\.' "$LAB_PCPD_LOG" | lab_ev
check "corrupt: snapshot refused, reason corrupt" grep -q 'mappings.snapshot_unused reason=corrupt' "$LAB_PCPD_LOG"
check "corrupt: recovered by the nft dump, all 3" \
  grep -q 'mappings.recovered source=nft_dump found=3 restored=3 conflicts=0' "$LAB_PCPD_LOG"
after_restart corrupt

lab_log "case 4: kill -9 (no snapshot written), start again: nft dump"
killed_log=$LAB_PCPD_LOG
lab_pcpd_stop -9
check_not "kill9: no snapshot written" grep -q 'mappings.snapshot_written' "$killed_log"
check "kill9: no snapshot file" bash -c "[ ! -e '$snap' ]"
lab_pcpd_start "$conf"
grep 'mappings\.' "$LAB_PCPD_LOG" | lab_ev
check "kill9: reason no_snapshot" grep -q 'mappings.snapshot_unused reason=no_snapshot' "$LAB_PCPD_LOG"
check "kill9: recovered by the nft dump, all 3" \
  grep -q 'mappings.recovered source=nft_dump found=3 restored=3 conflicts=0' "$LAB_PCPD_LOG"
after_restart kill9
lab_finish
