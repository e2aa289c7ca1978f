#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs every Debian 12 package pcpd needs to build, test and run its labs: the compilers
# (clang for the fuzzers), the libraries, the lab tools and the packaging tools (test pkg_deb).
# Idempotent: packages already present are skipped; apt-get runs only when something is missing.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config ninja-build
  libnftnl-dev libmnl-dev libnetfilter-conntrack-dev
  doctest-dev libexpected-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libsystemd-dev libsodium-dev
  nftables conntrack conntrackd keepalived iproute2 natpmpc tshark valgrind
  python3-libtorrent transmission-cli
  python3 procps psmisc iputils-ping
  clang libclang-rt-dev
  debhelper dpkg-dev fakeroot lintian debootstrap python3-prometheus-client systemd-container
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
