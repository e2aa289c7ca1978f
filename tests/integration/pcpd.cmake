# SPDX-License-Identifier: GPL-2.0-or-later
# Root/netns integration tests (label netns): each script builds its own three-namespace lab
# (scripts/lab.sh), runs the real pcpd and pcpc from this build tree, and tears the lab down.
# Script paths are relative to tests/ (this fragment is included from there). The scripts skip
# (exit 77) when not root outside CI and never skip with CI=true.
pcpd_add_netns_test(it_map integration/it_map.sh)
pcpd_add_netns_test(it_peer integration/it_peer.sh)
pcpd_add_netns_test(it_ipv6_pinhole integration/it_ipv6.sh)
pcpd_add_netns_test(it_filter integration/it_filter.sh)
pcpd_add_netns_test(it_natpmp integration/it_natpmp.sh)
pcpd_add_netns_test(it_restart integration/it_restart.sh)
pcpd_add_netns_test(it_hostile integration/it_hostile.sh)
pcpd_add_netns_test(it_tshark integration/it_tshark.sh)
# pcpctl list of 60,000 mappings: streamed, bounded memory, no request held.
pcpd_add_netns_test(it_list integration/it_list.sh)
# A router with 50,000 conntrack entries: no request waits for conntrack work (busy router).
pcpd_add_netns_test(it_busy integration/it_busy.sh)
# pcpctl reload fails (exit 1, file:line) on a bad file and keeps the running configuration.
pcpd_add_netns_test(it_reload integration/it_reload.sh)
# The WAN address changes under pcpd (rtnetlink, no reload): mappings move, Mapping Update,
# epoch reset, announcements; the address gone and back; a reload to another address.
pcpd_add_netns_test(it_wan_change integration/it_wan_change.sh)
# Clients that lose their nonce: refuse (default), pcpctl delete / flush, nonce_change =
# same_host, NAT-PMP mappings taken by their own host's PCP request.
pcpd_add_netns_test(it_nonce integration/it_nonce.sh)
# Real clients from Debian: libtorrent 2.0.8 (PCP) and Transmission 3.00 (NAT-PMP) get working
# mappings, across a pcpd restart and a WAN renumbering.
pcpd_add_netns_test(it_real_clients integration/it_real_clients.sh)
# Client models from public source (Apple mDNSResponder, Tailscale, Bitcoin Core) through a
# restart, a reboot, new nonces and a WAN renumbering.
pcpd_add_netns_test(it_client_models integration/it_client_models.sh)
# A libpcp-like client on one [::]:5350 socket gets the ANNOUNCE unicast (R-ANN-4).
pcpd_add_netns_test(it_announce_unicast integration/it_announce_unicast.sh)
# [[static]] port forwards: in the kernel without timeout, requests cannot take or delete them,
# kill -9, reload over a client's mapping, nftables restarted, WAN renumbered.
pcpd_add_netns_test(it_static integration/it_static.sh)
# mappings.allow_all_ports: an exposed host gets every port of a protocol (NAT44 and IPv6),
# the address's other bindings of that protocol are refused, a port-0 delete ends it.
pcpd_add_netns_test(it_all_ports integration/it_all_ports.sh)
# A WAN change that leaves a mapping without a free port on the new address: it moves later.
pcpd_add_netns_test(it_wan_full integration/it_wan_full.sh)
