# SPDX-License-Identifier: GPL-2.0-or-later
# nft part: pure tests of the nftables backend and the conntrack matcher (no kernel, no root).
# The kernel test (root, private netns) is in tests/integration/nft.cmake.
pcpd_add_test(test_nft
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/nft_element_comment_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_filters_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_elements_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_batch_builder_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_batch_grouping_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_batch_refresh_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_checkpoint_test.cpp
  LIBS pcp_nft PkgConfig::NFTNL PkgConfig::MNL)

# conntrack part: ConntrackSync over a fake conntrack table, the flow matchers, the forget queue.
pcpd_add_test(test_conntrack
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/ct_forget_queue_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ct_flow_match_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ct_sync_test.cpp
  LIBS pcp_ct)
