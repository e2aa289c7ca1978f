# SPDX-License-Identifier: GPL-2.0-or-later
# pcp_core hot-standby additions (RFC 7767 §3.2): Context::checkpoint_available, withdraw_checkpoint,
# mirror; Server over FakeDatapath + FakeClock.
pcpd_add_test(test_core_standby
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/core_standby.cpp
  LIBS pcp_core)
