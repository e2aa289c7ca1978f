#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_journal.sh: the mapping journal (state_dir/mappings.journal, daemon.journal on, the
# default). After kill -9 the next start rebuilds the table from mappings.snapshot plus the
# journal, without the nft set dump, when the kernel's generation id is the snapshot's plus the
# journal's commits; it keeps nonces, ports, filters, descriptions and the epoch, and goes on
# appending to the same journal. Fallbacks to the dump, each with its reason and a complete
# recovery: another program's nft transaction, a record cut short by the crash. A clean stop
# leaves a fresh snapshot and an empty journal. Past daemon.journal_max_mb the daemon compacts
# (new snapshot, empty journal) and a crash after that still restores everything.
# Requirements: R-OWN-5 (nonce survives), R-OWN-2 (another nonce refused), R-EPOCH-3 (epoch
# continuous after a complete restore), R-SEC-4 (same external port after restart),
# R-HDR-10 (the restored table and the kernel agree element for element).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_journal
lab_up
conf=$LAB_DIR/pcpd.conf
# No request rate limits and room for case 6's 1,000 mappings from one client.
lab_ctl_config "$conf" daemon.journal_max_mb=1 mappings.max_per_client=2000 limits.client_rate=0 limits.global_rate=0
snap=$LAB_DIR/state/mappings.snapshot
journal=$LAB_DIR/state/mappings.journal
LOADGEN=${PCPD_BUILD_DIR:-$LAB_SRC/build}/bench/pcpd-loadgen
[ -x "$LOADGEN" ] || lab_die "pcpd-loadgen not found at $LOADGEN (built with the project)"
lab_pcpd_start "$conf"
check "start: a journal was started after the first start's snapshot" \
  grep -q 'mappings.snapshot_written reason=start .*journal=started' "$LAB_PCPD_LOG"

lab_log "changes: three mappings, a fourth created then deleted, a fifth kept, a refresh"
lab_three_mappings "journal web"
lab_pc "$r.tmp" -s 192.0.2.1 map -p udp -i 8081 -l 600
lab_pc "$r.tmp-del" -s 192.0.2.1 map -p udp -i 8081 -l 0 -n "$(lab_json "$r.tmp" nonce)"
check "the fourth mapping is deleted (lifetime 0)" lab_eq result "$(lab_json "$r.tmp-del" result)" SUCCESS
lab_pc "$r.keep" -s 192.0.2.1 map -p udp -i 8082 -l 700 --description "kept"
nkeep=$(lab_json "$r.keep" nonce)
lab_pc "$r.peer-again" -s 192.0.2.1 peer -p tcp -i 40001 -r 203.0.113.100:9000 -e 50001 -l 900 -n "$n2"

# snapshot_state: what the next start has to give back (list and kernel elements).
snapshot_state() {
  pcpctl list --json >"$LAB_DIR/list.before.json"
  lab_nft_elements >"$LAB_DIR/before.txt"
}
# crash_and_start TAG: kill -9 (no snapshot written at the stop), then a new pcpd.
crash_and_start() {
  local killed=$LAB_PCPD_LOG
  lab_pcpd_stop -9
  check_not "$1: kill -9 wrote no snapshot" grep -q 'mappings.snapshot_written reason=stop' "$killed"
  lab_pcpd_start "$conf"
  grep 'mappings\.\|nft.recovered\|epoch\.' "$LAB_PCPD_LOG" | lab_ev
}
# restored_by_journal TAG N: restored from the journal, N mappings, no set dump, all as before.
restored_by_journal() {
  check "$1: restored from the journal, all $2" \
    grep -q "mappings.recovered source=journal found=$2 restored=$2 conflicts=0" "$LAB_PCPD_LOG"
  check_not "$1: no nft set dump (nft.recovered) at this start" grep -q 'nft.recovered' "$LAB_PCPD_LOG"
  check "$1: R-EPOCH-3 epoch continued" grep -q 'epoch.continued' "$LAB_PCPD_LOG"
  lab_check_restored "$1" "$2"
  check "$1: the journal goes on (no new snapshot at this start)" \
    bash -c "! grep -q 'mappings.snapshot_written' '$LAB_PCPD_LOG'"
}
# restored_by_dump TAG N REASON: the journal refused for REASON, the dump restored all N.
restored_by_dump() {
  check "$1: journal refused, reason $3" grep -q "mappings.snapshot_unused reason=$3" "$LAB_PCPD_LOG"
  check "$1: recovered by the nft dump, all $2" \
    grep -q "mappings.recovered source=nft_dump found=$2 restored=$2 conflicts=0" "$LAB_PCPD_LOG"
  check "$1: a new snapshot and journal after the dump" \
    grep -q "mappings.snapshot_written reason=start .*mappings=$2 .*journal=started" "$LAB_PCPD_LOG"
}

lab_log "case 1: kill -9, start again: snapshot + journal, no dump"
snapshot_state
check "journal: $journal holds records" bash -c "[ \$(stat -c %s '$journal') -gt 200 ]"
crash_and_start kill1
restored_by_journal kill1 4
lab_after_restart kill1

lab_log "case 2: more changes on the continued journal, kill -9 again"
lab_pc "$r.keep-del" -s 192.0.2.1 map -p udp -i 8082 -l 0 -n "$nkeep"
check "the kept mapping is deleted" lab_eq result "$(lab_json "$r.keep-del" result)" SUCCESS
lab_pc "$r.new" -s 192.0.2.1 map -p tcp -i 8083 -l 800 --filter 198.51.100.0/24 --description "after restart"
snapshot_state
crash_and_start kill2
restored_by_journal kill2 4
lab_after_restart kill2

lab_log "case 3: another program commits an nft transaction, then kill -9: nft dump"
lab_rtr nft add table inet journalcheck
lab_rtr nft delete table inet journalcheck
crash_and_start foreign
restored_by_dump foreign 4 nft_generation_changed
lab_after_restart foreign

lab_log "case 4: the last record cut short by the crash: its commit is not accounted for, nft dump"
lab_pc "$r.cut" -s 192.0.2.1 map -p udp -i 8084 -l 600
snapshot_state
lab_pcpd_stop -9
size=$(stat -c %s "$journal")
truncate -s $((size - 5)) "$journal"
lab_pcpd_start "$conf"
grep 'mappings\.\|nft.recovered' "$LAB_PCPD_LOG" | lab_ev
restored_by_dump cut 5 nft_generation_changed
check "cut: the log names the bytes cut short" grep -q 'bytes cut short' "$LAB_PCPD_LOG"
lab_after_restart cut

lab_log "case 5: SIGTERM: a fresh snapshot and an empty journal; the next start uses them"
snapshot_state
stopped=$LAB_PCPD_LOG
lab_pcpd_stop
check "stop: snapshot written at the stop, journal started" \
  grep -q 'mappings.snapshot_written reason=stop .*mappings=5 .*journal=started' "$stopped"
lab_pcpd_start "$conf"
grep 'mappings\.' "$LAB_PCPD_LOG" | lab_ev
check "stop: restored from the snapshot (the journal holds only this start's commits)" \
  grep -q 'mappings.recovered source=snapshot found=5 restored=5 conflicts=0 .*journal="0 records' "$LAB_PCPD_LOG"
check_not "stop: no nft set dump" grep -q 'nft.recovered' "$LAB_PCPD_LOG"

lab_log "case 6: 1,000 mappings and 30,000 refreshes: the journal passes 1 MiB, is compacted, kill -9"
gen() { ip netns exec "$LAB_CLI" timeout 120 "$LOADGEN" -s 192.0.2.1 -c 192.0.2.10 -b 20000 --seed 7 \
  -w 32 --max-seconds 60 "$@"; }
gen -n 1000 -l 3600 fill >"$LAB_DIR/fill.json" 2>&1
gen -n 30000 --span 1000 -l 3600 refresh >"$LAB_DIR/refresh.json" 2>&1
lab_ev <"$LAB_DIR/refresh.json"
for _ in $(seq 1 40); do
  grep -q 'mappings.snapshot_written reason=journal_compaction' "$LAB_PCPD_LOG" && break
  sleep 0.5
done
grep 'mappings.snapshot_written' "$LAB_PCPD_LOG" | lab_ev
check "compaction: a new snapshot once the journal passed 1 MiB" \
  grep -q 'mappings.snapshot_written reason=journal_compaction .*mappings=1005 .*journal=started' "$LAB_PCPD_LOG"
check "compaction: the journal is below 1 MiB again" bash -c "[ \$(stat -c %s '$journal') -lt 1048576 ]"
lab_pc "$r.late" -s 192.0.2.1 map -p tcp -i 8085 -l 600
snapshot_state
crash_and_start compacted
restored_by_journal compacted 1006
lab_after_restart compacted
lab_finish
