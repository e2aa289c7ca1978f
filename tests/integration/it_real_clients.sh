#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_real_clients.sh: real client software from Debian 12 against pcpd, as users run it.
#   - libtorrent 2.0.8 (python3-libtorrent, libtorrent_client.py): PCP MAP for TCP and UDP on its
#     listen port 6881; it takes only replies of exactly 60 bytes (natpmp::on_reply in
#     src/natpmp.cpp), so pcpd's default (no CAPABILITY in MAP responses) must hold.
#   - Transmission 3.00 (transmission-cli -m, libnatpmp): NAT-PMP external address, then a TCP
#     mapping of its peer port 51413 (tr_natpmpPulse in libtransmission/natpmp.c).
# Both get their mappings and a remote host connects to them through 203.0.113.1; both keep
# working across a pcpd restart (SIGTERM, start) and a WAN renumbering to 203.0.113.5 (pcpd
# moves the mappings with their ports: neither client listens for unsolicited messages, so only
# the kept port keeps them reachable); libtorrent's deletes on quit remove its mappings.
# The clients reach only lab addresses: the router has no route beyond the lab, and an nftables
# output filter in the client namespace drops anything to other addresses (counted, shown).
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-240}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_real_clients
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null ||
  lab_die "python3-libtorrent missing (scripts/install-deps.sh installs it)"
for t in transmission-cli transmission-create; do
  command -v "$t" >/dev/null || lab_die "$t missing (scripts/install-deps.sh installs transmission-cli)"
done
lab_up
# Only lab addresses, the PCP groups and link-local signalling leave the client namespace.
lab_cli nft -f - <<'EOF' || lab_die "client output filter"
table inet labguard {
  chain out {
    type filter hook output priority 0; policy drop;
    oif "lo" accept
    ip daddr { 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 224.0.0.1 } accept
    ip6 daddr { 2001:db8::/32, ff02::1 } accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld2-listener-report } accept
    counter name beyond drop
  }
  counter beyond {}
}
EOF
check "the router has no default route: nothing beyond the lab is reachable" test -z "$(lab_rtr ip route show default)"
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
lab_pcpd_start "$conf"

waitfor() { lab_waitfor "$@"; }
# tcp_open ADDR PORT: the remote host's TCP connection is accepted (by the client's listener)
tcp_open() {
  lab_wan timeout 10 /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.close()' "$1" "$2" 2>/dev/null
}
listed() { pcpctl list | grep -q "$1"; }
lt_log=$LAB_DIR/libtorrent.jsonl
lt_mapped() { # lt_mapped TRANSPORT PORT: libtorrent reported that mapping
  grep '"alert": "portmap"' "$lt_log" 2>/dev/null | grep "\"transport\": \"$1\"" | grep -q "\"external_port\": $2"
}

lab_log "1. libtorrent 2.0.8 (PCP)"
# The LAN address, not 0.0.0.0: in the lab namespace libtorrent 2.0.8 expanded 0.0.0.0 to
# 127.0.0.1 only (so it never started NAT-PMP/PCP on eth0); naming the address is what a user
# who binds qBittorrent or Deluge to the LAN interface does.
lab_spawn "$LAB_CLI" "$lt_log" /usr/bin/python3 "$LAB_SRC/tests/integration/libtorrent_client.py" \
  --listen 192.0.2.10:6881 --life 200
LT_PID=$LAB_LASTPID
check "libtorrent maps TCP 6881 (portmap alert, external port 6881)" waitfor 30 lt_mapped TCP 6881
check "libtorrent maps UDP 6881" waitfor 10 lt_mapped UDP 6881
grep -E '"portmap"|"portmap_error"' "$lt_log" | lab_ev
check_not "libtorrent reports no port-mapping error" grep -q '"portmap_error"' "$lt_log"
check "pcpctl list: map tcp 192.0.2.10:6881 -> 203.0.113.1:6881" listed 'map tcp 192.0.2.10:6881 -> 203.0.113.1:6881'
check "pcpctl list: map udp 192.0.2.10:6881 -> 203.0.113.1:6881" listed 'map udp 192.0.2.10:6881 -> 203.0.113.1:6881'
check "the remote host connects to libtorrent through 203.0.113.1:6881" tcp_open 203.0.113.1 6881

lab_log "2. Transmission 3.00 (NAT-PMP through libnatpmp)"
tr=$LAB_DIR/transmission
mkdir -p "$tr/cfg" "$tr/dl"
head -c 65536 /dev/urandom >"$tr/payload.bin"
transmission-create -o "$tr/payload.torrent" "$tr/payload.bin" >"$tr/create.log" 2>&1 ||
  lab_die "transmission-create failed"
# No DHT, LPD, PEX or uTP: nothing to reach outside the lab (the torrent has no tracker).
cat >"$tr/cfg/settings.json" <<'EOF'
{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
 "port-forwarding-enabled": true, "peer-port": 51413, "peer-port-random-on-start": false}
EOF
lab_spawn "$LAB_CLI" "$tr/cli.log" transmission-cli -m -p 51413 -g "$tr/cfg" -w "$tr/dl" "$tr/payload.torrent"
forwarded() { grep -q 'Port 51413 forwarded successfully' "$tr/cli.log"; }
check "Transmission: Port 51413 forwarded successfully (within 30 s; it reads replies after 8 s)" waitfor 30 forwarded
grep -E 'Port Forwarding|public address' "$tr/cli.log" | tail -n 4 | lab_ev
check "Transmission learned the external address 203.0.113.1" grep -q 'Found public address "203.0.113.1"' "$tr/cli.log"
check "pcpctl list: the NAT-PMP mapping tcp 192.0.2.10:51413 -> 203.0.113.1:51413" \
  listed 'map tcp 192.0.2.10:51413 -> 203.0.113.1:51413 .*origin=natpmp'
check "the remote host connects to Transmission through 203.0.113.1:51413" tcp_open 203.0.113.1 51413

lab_log "3. pcpd restarted (SIGTERM, start)"
lab_pcpd_stop
lab_pcpd_start "$conf"
check "after the restart: libtorrent still reachable through 203.0.113.1:6881" tcp_open 203.0.113.1 6881
check "... Transmission through 203.0.113.1:51413" tcp_open 203.0.113.1 51413
check "... pcpd holds all three mappings" lab_eq mappings "$(pcpctl list | grep -c '192.0.2.10:\(6881\|51413\)')" 3

lab_log "4. the WAN address moves to 203.0.113.5"
printf 'addr del 203.0.113.1/24 dev wan0\naddr add 203.0.113.5/24 dev wan0\n' | lab_rtr ip -batch -
moved() { grep -q 'external.mappings_moved to=203.0.113.5 moved=3 port_kept=3' "$LAB_PCPD_LOG"; }
check "pcpd moves the three mappings to 203.0.113.5 with their ports" waitfor 10 moved
check "libtorrent reachable through 203.0.113.5:6881" tcp_open 203.0.113.5 6881
check "Transmission reachable through 203.0.113.5:51413" tcp_open 203.0.113.5 51413
check_not "libtorrent still reports no port-mapping error" grep -q '"portmap_error"' "$lt_log"

lab_log "5. libtorrent quits: its deletes remove its mappings"
lab_kill "$LT_PID" TERM
check "libtorrent closed its session" grep -q '"closed"' "$lt_log"
gone() { ! pcpctl list | grep -q '192.0.2.10:6881'; }
check "pcpd removed libtorrent's TCP and UDP mappings (lifetime 0, same nonce)" waitfor 10 gone
check "Transmission's mapping stays" listed '192.0.2.10:51413'
echo "    packets the clients tried to send beyond the lab (dropped): $(lab_cli nft list counter inet labguard beyond | grep -o 'packets [0-9]*')"
lab_finish
