# pcp_ctl: metrics families and their text / Prometheus renderings.
pcpd_add_test(test_ctl
  SOURCES unit/ctl_metrics.cpp
  LIBS pcp_ctl)
