# SPDX-License-Identifier: GPL-2.0-or-later
# Hot standby: pcpd peer link between the two routers of scripts/ha-lab.sh (keepalived,
# pcpd with [ha]); failover with elected/unelected MAP mappings, standby restart and snapshot,
# wrong-key and malformed peer input. Needs keepalived, conntrack tools; skips (77) when not root
# outside CI, never with CI=true.
pcpd_add_netns_test(ha_standby integration/ha_standby.sh)
