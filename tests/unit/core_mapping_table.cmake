# SPDX-License-Identifier: GPL-2.0-or-later
# pcp_core MappingTable against a naive model (compact table): random operations, every
# query compared.
pcpd_add_test(test_core_mapping_table
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/core_mapping_table_model.cpp
  LIBS pcp_core)
