# SPDX-License-Identifier: GPL-2.0-or-later
# pcp_ctl: metrics families and their text / Prometheus renderings; the control socket.
pcpd_add_test(test_ctl
  SOURCES unit/ctl_metrics.cpp unit/ctl_socket.cpp
  LIBS pcp_ctl)
