#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_snapshot.sh: the restart snapshot (state_dir/mappings.snapshot). pcpd stopped with
# SIGTERM writes its table; the next start restores from it without dumping the nft sets when
# the ruleset generation id is unchanged, and keeps nonces, ports and the epoch. Fallbacks to the
# nft dump, each with its reason in the log and a complete recovery: a ruleset change between
# stop and start (generation id differs), a corrupt snapshot, kill -9 (no snapshot); and a
# ruleset flushed and loaded again, where the dump finds less than the snapshot held: the epoch
# resets.
# Requirements: R-OWN-5 (nonce survives a restore), R-OWN-2 (NOT_AUTHORIZED for another nonce),
# R-EPOCH-3 (continuous after a complete restore), R-SEC-4 (same external port after restart).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_snapshot
lab_up
conf=$LAB_DIR/pcpd.conf
# daemon.journal=false: the snapshot alone, used once (it_journal.sh covers the journal).
lab_ctl_config "$conf" daemon.journal=false
snap=$LAB_DIR/state/mappings.snapshot
lab_pcpd_start "$conf"

lab_log "three mappings: MAP v4 with FILTER and DESCRIPTION, PEER, IPv6 pinhole"
lab_three_mappings "snapshot web"

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
lab_check_restored snapshot 3
grep 'mappings\.\|epoch\.' "$LAB_PCPD_LOG" | lab_ev
check "snapshot: restored from the snapshot, all 3" \
  grep -q 'mappings.recovered source=snapshot found=3 restored=3 conflicts=0' "$LAB_PCPD_LOG"
check_not "snapshot: no nft set dump (nft.recovered) at this start" grep -q 'nft.recovered' "$LAB_PCPD_LOG"
check "snapshot: the file is gone once read" bash -c "[ ! -e '$snap' ]"
check "snapshot: epoch continued" grep -q 'epoch.continued' "$LAB_PCPD_LOG"
lab_after_restart snapshot

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
lab_after_restart generation

lab_log "case 3: SIGTERM, the snapshot cut in half before the start: nft dump, no crash"
stop_term corrupt
size=$(stat -c %s "$snap")
truncate -s $((size / 2)) "$snap"
lab_pcpd_start "$conf"
grep 'mappings\.' "$LAB_PCPD_LOG" | lab_ev
check "corrupt: snapshot refused, reason corrupt" grep -q 'mappings.snapshot_unused reason=corrupt' "$LAB_PCPD_LOG"
check "corrupt: recovered by the nft dump, all 3" \
  grep -q 'mappings.recovered source=nft_dump found=3 restored=3 conflicts=0' "$LAB_PCPD_LOG"
lab_after_restart corrupt

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
lab_after_restart kill9

# RFC 6887 §8.5 / RFC 6886 §3.6: state lost means a new epoch, so clients re-create their
# mappings; continuing it would leave them believing in mappings the kernel no longer has.
lab_log "case 5: SIGTERM, nft flush ruleset and the rules loaded again (nftables restarted): lost"
stop_term lost
lab_rtr nft flush ruleset
lab_rtr nft -f "$LAB_SRC/nft-rules/example-router.nft"
lab_rtr nft -f "$LAB_SRC/nft-rules/pcpd.nft"
lab_pcpd_start "$conf"
grep 'mappings\.\|epoch\.' "$LAB_PCPD_LOG" | lab_ev
check "lost: the dump finds none of the 3" grep -q 'mappings.recovered source=nft_dump found=0 ' "$LAB_PCPD_LOG"
check "lost: logged as a loss (mappings.lost held_before=3 recovered=0)" \
  grep -q 'mappings.lost held_before=3 recovered=0' "$LAB_PCPD_LOG"
check "R-EPOCH-3 lost: the epoch is reset, not continued" grep -q 'epoch.reset' "$LAB_PCPD_LOG"
check_not "R-EPOCH-3 lost: no epoch.continued" grep -q 'epoch.continued' "$LAB_PCPD_LOG"
lab_pcpc --json -s 192.0.2.1 announce >"$LAB_DIR/lost.announce" 2>&1
lab_ev <"$LAB_DIR/lost.announce"
check "R-EPOCH-3 lost: ANNOUNCE reports an epoch below 10 s (it started again)" \
  eval '[ "$(lab_json "$LAB_DIR/lost.announce" epoch)" -lt 10 ]'
lab_finish
