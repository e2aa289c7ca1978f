# SPDX-License-Identifier: GPL-2.0-or-later
# Unit tests of pcp_wire (the PCP / NAT-PMP codec); vectors in tests/vectors/*.hex.
pcpd_add_test(test_wire
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/wire_decode_request.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wire_encode.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wire_decode_response.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wire_natpmp.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wire_names.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wire_reader.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wire_random.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wire_capability.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wire_endpoint.cpp
  LIBS pcp_wire)
