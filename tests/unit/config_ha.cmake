# SPDX-License-Identifier: GPL-2.0-or-later
# [ha] (hot standby peer link) keys of pcp_config: defaults, peer address[:port], errors with
# file:line.
pcpd_add_test(test_config_ha
  SOURCES unit/config_ha.cpp
  LIBS pcp_config pcp_util)
