# SPDX-License-Identifier: GPL-2.0-or-later
# Config part: parser and interface defaults (pcp_config), logging (pcp_util).
pcpd_add_test(test_config
  SOURCES unit/config_parser.cpp unit/config_interfaces.cpp unit/daemon_log.cpp
  LIBS pcp_config pcp_util)
# Daemon helpers without sockets or netlink (epoch store, announce schedule/targets, filter).
pcpd_add_test(test_daemon
  SOURCES unit/daemon_helpers.cpp
  LIBS pcpd_helpers pcp_config)
# daemon::HaPeer over an in-memory link and a fake clock (hold, ack, timeout, peer down).
pcpd_add_test(test_ha_peer
  SOURCES unit/daemon_ha_peer.cpp
  LIBS pcpd_ha_peer)
