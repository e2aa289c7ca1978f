#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# build-deb.sh [OUTDIR]: builds the Debian package pcpd from this source tree.
# dpkg-buildpackage wants debian/ at the source root, so the tree (without .git and build dirs)
# is copied to a temporary directory with packaging/debian as debian/, built there with
# `dpkg-buildpackage -b -us -uc`, and the .deb (plus .ddeb, .buildinfo, .changes) is left in
# OUTDIR (default: build-deb/ in the source tree). Then lintian runs on the .changes (errors fail
# the script; warnings are printed, see packaging/debian/README.lintian).
# Missing build tools and build dependencies are installed with apt-get when run as root.
# The unit tests are built and run by dh_auto_test unless DEB_BUILD_OPTIONS has nocheck.
# Environment: PCPD_DEB_NO_LINTIAN=1 skips lintian; PCPD_DEB_KEEP=1 keeps the temporary tree.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$src/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

tools=(dpkg-dev debhelper lintian fakeroot)
builddeps=(cmake doctest-dev ninja-build pkg-config libcli11-dev libexpected-dev libmnl-dev
  libnetfilter-conntrack-dev libnftnl-dev libsodium-dev libsystemd-dev libtomlplusplus-dev
  nlohmann-json3-dev)
missing=()
for p in "${tools[@]}" "${builddeps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "build-deb: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "build-deb: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

tmp=$(mktemp -d /tmp/pcpd-deb.XXXXXX)
cleanup() { if [ "${PCPD_DEB_KEEP:-}" = 1 ]; then echo "build-deb: kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
tree=$tmp/pcpd-$version
mkdir -p "$tree"
# Top-level build*/ directories and .git stay behind; everything else is the source.
tar -C "$src" --exclude=./.git --exclude='./build' --exclude='./build-*' -cf - . | tar -C "$tree" -xf -
rm -rf "$tree/debian"
cp -a "$src/packaging/debian" "$tree/debian"

echo "build-deb: building pcpd $version in $tree"
t0=$(date +%s)
(cd "$tree" && dpkg-checkbuilddeps && dpkg-buildpackage -b -us -uc -j2) >"$tmp/build.log" 2>&1 || {
  tail -n 60 "$tmp/build.log"
  echo "build-deb: dpkg-buildpackage failed (log above)" >&2
  exit 1
}
echo "build-deb: built in $(($(date +%s) - t0)) s"
# dh_auto_test's summary (the unit tests; none with DEB_BUILD_OPTIONS=nocheck).
grep -E '^[0-9]+% tests passed' "$tmp/build.log" | sed 's/^/build-deb: unit tests: /' || true

arch=$(dpkg --print-architecture)
changes=$tmp/pcpd_${version}_${arch}.changes
for f in "$tmp"/*.deb "$tmp"/*.ddeb "$tmp"/*.buildinfo "$changes"; do
  [ -e "$f" ] && cp "$f" "$out/"
done
deb=$out/pcpd_${version}_${arch}.deb
[ -f "$deb" ] || { echo "build-deb: $deb was not produced" >&2; exit 1; }
echo "build-deb: $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'

if [ "${PCPD_DEB_NO_LINTIAN:-}" != 1 ]; then
  # lintian refuses to run as root without --allow-root; it only reads the packages.
  set +e
  lintian --allow-root --info --display-info --pedantic --fail-on error "$out/pcpd_${version}_${arch}.changes" |
    tee "$out/lintian.txt"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || { echo "build-deb: lintian reported errors" >&2; exit 1; }
  echo "build-deb: lintian: no errors ($(grep -c '^W:' "$out/lintian.txt" || true) warnings, see $out/lintian.txt)"
fi
