#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench_flat_smoke: proves bench/flat.sh works ("<= 10 % slower at 1,000,000 than at
# 100"): an A/B run (--pcpd-b, the same binary twice), so four labs side by side with 10 and
# 3,000 mappings, one round of 2,000 requests per operation; the JSON lines must hold every fill,
# a measurement of each operation in each lab with pcpd's CPU per request, the idle line and a
# snapshot at each stop, and the summary must print both ratio tables and the b / a table.
# Numbers are not checked (a smoke run, not a benchmark). Root only; skips (77) outside CI when
# not root.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "bench_flat_smoke: must run as root in CI" >&2; exit 1; fi
  echo "bench_flat_smoke: SKIP: needs root (network namespaces)"; exit 77
fi
src=${PCPD_SOURCE_DIR:?}
out=$(mktemp -d /tmp/pcpd-flat-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
timeout 300 bash "$src/bench/flat.sh" --build "${PCPD_BUILD_DIR:?}" --small 10 --large 3000 --rounds 1 \
  --requests 2000 --pcpd-b "$PCPD_BUILD_DIR/src/pcpd/pcpd" --out "$out/flat.jsonl" 2>"$out/summary.txt" ||
  { cat "$out/summary.txt" >&2; exit 1; }
cat "$out/summary.txt"
python3 - "$out/flat.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
fills = {r["lab"]: r["existing"] for r in rows if r.get("op") == "fill"}
assert fills == {"small": 10, "large": 3000, "small_b": 10, "large_b": 3000}, fills
for lab in fills:
    for op in ("refresh", "create", "delete"):
        m = [r for r in rows if r.get("lab") == lab and r.get("op") == op and "round" in r]
        assert len(m) == 1, (lab, op, m)
        assert m[0]["answered"] > 0 and m[0]["cpu_us_per_req"] is not None, m[0]
    assert any(r.get("op") == "snapshot" and r["lab"] == lab and r["at_stop"] for r in rows), lab
assert any(r.get("op") == "idle" for r in rows)
print("bench_flat_smoke: JSON lines complete")
PY
grep -q '| ratio large/small | median |' "$out/summary.txt"
grep -q '| ratio large_b/small_b | median |' "$out/summary.txt"
grep -q 'CPU per request, refresh' "$out/summary.txt"
grep -q '| large, refresh |' "$out/summary.txt"  # the b / a table
echo "bench_flat_smoke: PASS"
