#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_crash.sh: kill -9 pcpd while clients create and refresh mappings, start it again, several
# times. Four clients (192.0.2.10-13) each create CRASH_PER_CLIENT (75) MAP mappings and keep
# refreshing them (tests/integration/robust_tool.py load, ~40 requests/s each, under the default
# per-client rate limit). After every restart: pcpd recovers every mapping from the kernel with
# no conflict, the epoch is continuous, and `pcpctl list --json` and `nft -j list table inet
# pcpd` match element for element (robust_tool.py consistency: no element without its mapping,
# no mapping without an element). At the end every mapping answers a refresh with its own nonce
# with SUCCESS and the same external port, another nonce with NOT_AUTHORIZED, and no client saw
# an error or an external port change during the whole run.
# Requirements: R-OWN-5 (nonce survives a restore), R-OWN-2 (NOT_AUTHORIZED for another nonce),
# R-EPOCH-3 (continuous after a complete restore), R-SEC-4 (no port given away after a restart),
# R-HDR-10 (all or nothing: the kernel never holds half a mapping).
# Environment: CRASH_KILLS (3), CRASH_PER_CLIENT (75).
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-280}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_crash
TOOL=$LAB_SRC/tests/integration/robust_tool.py
kills=${CRASH_KILLS:-3}
per=${CRASH_PER_CLIENT:-75}
clients=(192.0.2.10 192.0.2.11 192.0.2.12 192.0.2.13)
total=$((per * ${#clients[@]}))
lab_up
for c in "${clients[@]:1}"; do ip -n "$LAB_CLI" addr add "$c/24" dev eth0; done
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf" 'daemon.log_level="info"'
lab_pcpd_start "$conf"
seed=$LAB_RND

epoch_now() { lab_stat pcpd_epoch_seconds; }

lab_log "$total mappings from ${#clients[@]} clients, then refreshes"
pids=()
for i in "${!clients[@]}"; do
  lab_spawn "$LAB_CLI" "$LAB_DIR/load.$i.log" python3 "$TOOL" load --server 192.0.2.1 \
    --client "${clients[$i]}" --base 20000 --count "$per" --seed "$seed" --rate 40 \
    --duration $((LAB_WATCHDOG - 60)) --state "$LAB_DIR/load.$i.json"
  pids+=("$LAB_LASTPID")
done
created_all() {
  local i
  for i in "${!clients[@]}"; do grep -q '^created' "$LAB_DIR/load.$i.log" 2>/dev/null || return 1; done
}
for _ in $(seq 1 600); do created_all && break; sleep 0.1; done
check "every client created its $per mappings" created_all
for i in "${!clients[@]}"; do lab_ev <"$LAB_DIR/load.$i.log"; done
check "before the first kill: pcpctl list and inet pcpd match ($total mappings)" lab_consistent before "$total"

for k in $(seq 1 "$kills"); do
  sleep 2  # refreshes in flight
  e1=$(epoch_now)
  lab_log "kill $k/$kills: kill -9 pcpd (pid $LAB_PCPD_PID) during the refreshes (epoch $e1)"
  lab_pcpd_stop -9
  sleep 0.5
  lab_pcpd_start "$conf"
  rec=$(grep -o '"mappings.recovered".*' "$LAB_PCPD_LOG" | head -n 1)
  [ -n "$rec" ] || rec=$(grep 'mappings.recovered' "$LAB_PCPD_LOG" | head -n 1)
  echo "    $rec"
  check "kill $k: R-OWN-5 pcpd recovered all $total mappings" \
    bash -c "grep 'mappings.recovered' '$LAB_PCPD_LOG' | grep -Eq '(found|\"found\")[=:] ?$total\b.*restored[\"]?[=:] ?$total\b'"
  check "kill $k: no restore conflict" \
    bash -c "grep 'mappings.recovered' '$LAB_PCPD_LOG' | grep -Eq 'conflicts[\"]?[=:] ?0\b'"
  check "kill $k: R-EPOCH-3 epoch continuous, not reset" bash -c "grep -q 'epoch.continued' '$LAB_PCPD_LOG'"
  e2=$(epoch_now)
  check "kill $k: R-EPOCH-3 epoch after the restart >= before" lab_ge epoch "$e2" "$e1"
  sleep 1.5  # the clients refresh against the new pcpd
  check "kill $k: R-HDR-10 pcpctl list and inet pcpd match element for element" lab_consistent "kill$k" "$total"
done

lab_log "stop the clients; their view of the run"
for p in "${pids[@]}"; do lab_kill "$p" TERM; done
for i in "${!clients[@]}"; do
  st=$LAB_DIR/load.$i.json
  python3 - "$st" <<'EOF' | lab_ev
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{s['client']}: {len(s['ports'])} mappings, {s['rounds']} refresh rounds, results {s['results']}, "
      f"unanswered {s['timeouts']}, external port changes {len(s.get('port_changes', []))}")
EOF
  check "${clients[$i]}: R-SEC-4 no external port changed during the run" \
    python3 -c "import json,sys; s=json.load(open('$st')); sys.exit(1 if s.get('port_changes') or len(s['ports']) != $per else 0)"
  check "${clients[$i]}: every answer was SUCCESS (no error during the kills)" \
    python3 -c "import json,sys; s=json.load(open('$st')); sys.exit(0 if set(s['results']) == {'SUCCESS'} else 1)"
done

lab_log "ownership after $kills restarts"
for i in "${!clients[@]}"; do
  check "${clients[$i]}: R-OWN-5 own nonce SUCCESS + same port, R-OWN-2 other nonce NOT_AUTHORIZED" \
    lab_cli timeout 60 python3 "$TOOL" verify --server 192.0.2.1 --client "${clients[$i]}" --base 20000 \
    --count "$per" --seed "$seed" --rate 200 --state "$LAB_DIR/load.$i.json"
done
check "final: pcpctl list and inet pcpd match element for element" lab_consistent final "$total"
check "pcpd still running" kill -0 "$LAB_PCPD_PID"
lab_finish
