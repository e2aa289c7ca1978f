# SPDX-License-Identifier: GPL-2.0-or-later
# pcp_core unit tests: Server over FakeDatapath + FakeClock (tests/fakes), Requests built directly,
# and a few through the codec (core_datagram.cpp, core_natpmp.cpp).
pcpd_add_test(test_core
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/core_all_ports.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_burst.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_capability.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_checkpoint.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_datagram.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_general.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_map.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_natpmp.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_nonce.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_options.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_peer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_port_allocator.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_readdress.cpp
    ${CMAKE_CURRENT_LIST_DIR}/core_static.cpp
  LIBS pcp_core)
