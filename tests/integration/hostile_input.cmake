# SPDX-License-Identifier: GPL-2.0-or-later
# Hostile input from the LAN: THIRD_PARTY, nonce theft, option lengths, the 1100-byte
# limit, truncated/padded datagrams, versions, R bit, NAT-PMP garbage (tests/integration/hostile_tool.py).
pcpd_add_netns_test(it_hostile_input integration/it_hostile_input.sh)
