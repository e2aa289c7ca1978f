#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench_ct_load_smoke: proves bench/ct_load.sh works (the busy-router benchmark): 0 and 3,000
# unrelated conntrack entries, both modes, 2 s of load, 500 entries to ct-touch. Every phase must
# report for every level and mode, every election must mark its idle connection and every delete
# remove it (5 s at most each), and ct-touch must re-announce all 500 marked entries. Numbers are
# not checked otherwise (a smoke run, not a benchmark). Root only; skips (77) outside CI when not
# root.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "bench_ct_load_smoke: must run as root in CI" >&2; exit 1; fi
  echo "bench_ct_load_smoke: SKIP: needs root (network namespaces)"; exit 77
fi
src=${PCPD_SOURCE_DIR:?}
out=$(mktemp -d /tmp/pcpd-ctload-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
timeout 300 bash "$src/bench/ct_load.sh" --build "${PCPD_BUILD_DIR:?}" --out "$out/ct.jsonl" --levels "0 3000" \
  --seconds 2 --touch 500 >"$out/table" 2>"$out/log" || { cat "$out/log" "$out/table" >&2; exit 1; }
cat "$out/table"
python3 - "$out/ct.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert rows[0]["op"] == "machine", rows[0]
seen = {(r["level"], r["mode"], r["phase"]): r for r in rows if "phase" in r}
for level in (0, 3000):
    for mode in ("index", "walk"):
        for phase in ("load", "elect", "delete", "touch"):
            assert (level, mode, phase) in seen, (level, mode, phase)
        load = seen[(level, mode, "load")]
        assert load["requests"] > 0 and load["lost"] == 0, load
        for phase in ("elect", "delete"):
            assert seen[(level, mode, phase)]["max_ms"] < 5000, seen[(level, mode, phase)]
        assert seen[(level, mode, "touch")]["touched"] >= 500, seen[(level, mode, "touch")]
print("bench_ct_load_smoke: PASS")
PY
