# SPDX-License-Identifier: GPL-2.0-or-later
# Two-router HA acceptance tests (label netns): keepalived + conntrackd + pcpd on two routers,
# built by scripts/ha-lab.sh. They need conntrack, conntrackd and keepalived installed; they skip
# (exit 77) when not root outside CI and never skip with CI=true.
pcpd_add_netns_test(ha_checkpoint integration/ha_checkpoint.sh)
# The same on two busy routers, 50,000 unrelated conntrack entries each: the elected
# connections still reach the standby while pcpd's conntrack work runs beside them.
add_test(NAME ha_checkpoint_busy COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/ha_checkpoint.sh)
set_tests_properties(ha_checkpoint_busy PROPERTIES LABELS netns SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT 600
  ENVIRONMENT "PCPD_BUILD_DIR=${PROJECT_BINARY_DIR};PCPD_SOURCE_DIR=${PROJECT_SOURCE_DIR};HA_CT_FILL=50000")
# An operator's week on the pair, with 100 messages/s on each elected flow: the primary dies and
# returns, planned switchover and back, an outage with refreshes on the backup, restarts of the
# backup's daemons and of both pcpd (ha_cycles.sh); then the same on busy routers.
add_test(NAME ha_cycles COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/ha_cycles.sh)
set_tests_properties(ha_cycles PROPERTIES LABELS netns SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT 900
  ENVIRONMENT "PCPD_BUILD_DIR=${PROJECT_BINARY_DIR};PCPD_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
add_test(NAME ha_cycles_busy COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/ha_cycles.sh)
set_tests_properties(ha_cycles_busy PROPERTIES LABELS netns SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT 900
  ENVIRONMENT "PCPD_BUILD_DIR=${PROJECT_BINARY_DIR};PCPD_SOURCE_DIR=${PROJECT_SOURCE_DIR};HA_CT_FILL=200000")
