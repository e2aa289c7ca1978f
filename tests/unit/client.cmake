# SPDX-License-Identifier: GPL-2.0-or-later
# pcp_client + pcpc unit tests (no root, no sleeping: fake clock and transport).
pcpd_add_test(test_client
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/client_request_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client_retransmit_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client_epoch_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client_session_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client_pcpc_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client_capability_test.cpp
  LIBS pcpc_lib pcp_client pcp_core)
