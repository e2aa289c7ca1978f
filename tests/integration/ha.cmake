# Two-router HA acceptance tests (label netns): keepalived + conntrackd + pcpd on two routers,
# built by scripts/ha-lab.sh. They need conntrack, conntrackd and keepalived installed; they skip
# (exit 77) when not root outside CI and never skip with CI=true.
pcpd_add_netns_test(ha_checkpoint integration/ha_checkpoint.sh)
