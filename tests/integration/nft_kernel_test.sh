#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs test_nft_kernel (NftDatapath against the kernel, in its own network namespace).
# Skips (77) without root unless CI=true; in CI it must run.
set -u
need_root() {
  if [ "${CI:-}" = "true" ]; then echo "FAIL: $1 (CI=true: this test must run)"; exit 1; fi
  echo "SKIP: $1"; exit 77
}
[ "$(id -u)" = 0 ] || need_root "test_nft_kernel needs root (netlink, private network namespace)"
command -v nft >/dev/null || need_root "nft CLI not installed (the test loads nft-rules/pcpd.nft with it)"
command -v conntrack >/dev/null || need_root "conntrack CLI not installed (the test inspects conntrack with it)"
bin="${PCPD_BUILD_DIR:?}/tests/test_nft_kernel"
[ -x "$bin" ] || { echo "FAIL: $bin not built (ninja test_nft_kernel)"; exit 1; }
exec timeout 300 "$bin"
