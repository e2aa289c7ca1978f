#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# demo.sh: pcpd in a throw-away three-namespace lab (scripts/lab.sh), about 15 s once built.
#   client 192.0.2.10 -- router 192.0.2.1 | 203.0.113.1 (pcpd) -- remote host 203.0.113.100
# Installs missing dependencies, builds pcpd and pcpc into build/, creates the lab, runs pcpd with
# a default configuration, asks for a mapping with pcpc from the client, shows the nftables
# state, connects from the remote host through the mapping, and removes everything again.
# Usage: sudo scripts/demo.sh        (KEEP=1 keeps the temp dir with the logs; BUILD_DIR=build)
set -u
cd "$(dirname "$0")/.." || exit 2
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (network namespaces, nftables): sudo $0"; exit 2; }

say "Dependencies (scripts/install-deps.sh: installs only what is missing)"
scripts/install-deps.sh || exit 1

build=${BUILD_DIR:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
say "Build: cmake -S . -B $build -G Ninja && ninja -C $build pcpd pcpc"
cmake -S . -B "$build" -G Ninja >/dev/null || exit 1
ninja -C "$build" pcpd pcpc || exit 1

. scripts/lab.sh
LAB_WATCHDOG=120
export PCPD_BUILD_DIR=$build
lab_init demo

say "Lab: namespaces $LAB_CLI, $LAB_RTR, $LAB_WAN; router ruleset nft-rules/example-router.nft + nft-rules/pcpd.nft"
lab_up

say "pcpd configuration ($LAB_DIR/pcpd.conf)"
lab_config "$LAB_DIR/pcpd.conf" daemon.log_level='"info"'
lab_ev <"$LAB_DIR/pcpd.conf"

say "Start pcpd in the router: pcpd -c pcpd.conf"
lab_pcpd_start "$LAB_DIR/pcpd.conf"

say "A TCP listener on the client, port 8080"
lab_listen "$LAB_CLI" 8080 "$LAB_DIR/listener.log"

say "The remote host tries 203.0.113.1:8080 before any mapping"
lab_connect "$LAB_WAN" 203.0.113.1 8080 --timeout 2 | lab_ev

say "On the client: pcpc -s 192.0.2.1 map -p tcp -i 8080 -l 600"
out=$(lab_pcpc -s 192.0.2.1 map -p tcp -i 8080 -l 600 2>&1)
rc=$?
echo "$out" | lab_ev
echo "    (exit $rc)"
port=$(sed -nE 's/.*-> 203\.0\.113\.1:([0-9]+).*/\1/p' <<<"$out" | head -n1)
[ -n "$port" ] || lab_die "no external port in pcpc's output"

say "In the router: nft list table inet pcpd"
lab_nft_table | lab_ev

say "The remote host connects to 203.0.113.1:$port"
check "remote host 203.0.113.100 reaches the client's listener through 203.0.113.1:$port" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$port"
echo "    client listener log:"
lab_ev <"$LAB_DIR/listener.log"

say "pcpd's log"
lab_pcpd_log

say "Tear down (stop pcpd, delete the namespaces)"
lab_pcpd_stop TERM
lab_finish
