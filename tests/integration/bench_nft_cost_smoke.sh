#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench_nft_cost_smoke: proves bench/nft_cost.sh works (the kernel's own cost per
# refresh, create and delete at two table sizes): 10 vs 3,000 NAT44 mappings, then IPv6 pinholes,
# two rounds of 2,000 requests per operation; every round must report all three costs for both
# levels, and the medians line each operation. Numbers are not checked (a smoke run, not a
# benchmark). Root only; skips (77) outside CI when not root.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "bench_nft_cost_smoke: must run as root in CI" >&2; exit 1; fi
  echo "bench_nft_cost_smoke: SKIP: needs root (network namespaces)"; exit 77
fi
src=${PCPD_SOURCE_DIR:?}
out=$(mktemp -d /tmp/pcpd-nftcost-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
for family in 4 6; do
  timeout 120 bash "$src/bench/nft_cost.sh" --build "${PCPD_BUILD_DIR:?}" --out "$out/cost$family.jsonl" -- \
    --small 10 --large 3000 --span 3000 --rounds 2 --per-round 2000 --batch 100 --family "$family" \
    >/dev/null 2>"$out/log" || { cat "$out/log" >&2; exit 1; }
  python3 - "$out/cost$family.jsonl" "$family" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
family = int(sys.argv[2])
assert rows[0]["op"] == "machine", rows[0]
rounds = [r for r in rows if r["op"] == "nft_cost"]
assert sorted((r["round"], r["level"]) for r in rounds) == [(1, "large"), (1, "small"), (2, "large"), (2, "small")], rounds
for r in rounds:
    assert r["family"] == family and r["mappings"] == (10 if r["level"] == "small" else 3000), r
    assert all(r[k] > 0 for k in ("refresh_ns", "create_ns", "delete_ns")), r
medians = {r["what"]: r for r in rows if r["op"] == "nft_cost_median"}
assert sorted(medians) == ["create", "delete", "refresh"], medians
print(f"bench_nft_cost_smoke: family {family}: refresh {medians['refresh']['small_ns']} / {medians['refresh']['large_ns']} ns")
PY
done
echo "bench_nft_cost_smoke: PASS"
