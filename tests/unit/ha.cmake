# SPDX-License-Identifier: GPL-2.0-or-later
# pcp_ha unit tests: the peer-link codec, the replication rules and two PeerLinks wired back to
# back through a lossy fake network (seeded), all on fake time. No sockets.
pkg_check_modules(HA_TEST_SODIUM REQUIRED IMPORTED_TARGET libsodium)
pcpd_add_test(test_ha
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/ha_peer_message.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ha_replication.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ha_peer_link.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ha_lossy_network.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ha_link_key.cpp
  LIBS pcp_ha PkgConfig::HA_TEST_SODIUM)
