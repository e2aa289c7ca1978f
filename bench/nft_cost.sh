#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/nft_cost.sh: what the kernel alone costs per MAP refresh, create and delete at 100 and at
# 1,000,000 mappings, measured by bench/nft_cost.cpp (pcpd-nft-cost) in a network
# namespace of its own that holds two copies of nft-rules/pcpd.nft: `inet pcpd_small` and
# `inet pcpd_large`. The batches are the ones pcpd sends for a burst (nft::BatchBuilder); no pcpd,
# no UDP. Compare its per-mapping differences with pcpd's whole request (bench/flat.sh).
#
# Usage: bench/nft_cost.sh [--build DIR] [--out FILE] [-- pcpd-nft-cost options]
#   (--small 100 --large 1000000 --span 62500 --burst 64 --batch 1000 --rounds 7 --per-round 200000
#    --family 4; --family 6: IPv6 pinholes, one element a mapping)
# Writes JSON lines to --out (default bench/results/nft_cost-<stamp>.jsonl). Needs root; exits 77
# when not root unless CI=true.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
out=
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "${2:?--build DIR}" && pwd); shift ;;
    --out) out=${2:?}; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "nft_cost.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "nft_cost.sh: needs root (CI=true: not skipping)" >&2; exit 1; fi
  echo "nft_cost.sh: SKIP: needs root for a network namespace and nftables" >&2
  exit 77
fi
bin=$build/bench/pcpd-nft-cost
[ -x "$bin" ] || { echo "nft_cost.sh: $bin not built (ninja -C $build pcpd-nft-cost)" >&2; exit 2; }
. "$(dirname "$0")/bench_lab.sh"
bench_lab_init nftcost
ns=pcpn-$rnd
bench_ns "$ns"
for t in pcpd_small pcpd_large; do
  sed "s/inet pcpd\\b/inet $t/g" "$repo/nft-rules/pcpd.nft" | ip netns exec "$ns" nft -f -
done
[ -n "$out" ] || out=$repo/bench/results/nft_cost-$(date -u +%Y%m%dT%H%M%SZ).jsonl
mkdir -p "$(dirname "$out")"
{
  echo "{\"op\":\"machine\",\"kernel\":\"$(uname -r)\",\"nproc\":$(nproc),\"date\":\"$(date -u +%FT%TZ)\",\"git\":\"$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)\"}"
  ip netns exec "$ns" "$bin" --small-table pcpd_small --large-table pcpd_large "$@"
} | tee "$out"
echo "nft_cost.sh: wrote $out" >&2
