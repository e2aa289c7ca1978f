# SPDX-License-Identifier: GPL-2.0-or-later
# pcp_core IdIndex: hash tags, ids up to kMaxId, reassign, erase, growth and shrink.
pcpd_add_test(test_core_id_index
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/core_id_index_test.cpp
  LIBS pcp_core)
