# nft part: pure tests of the nftables backend and the conntrack matcher (no kernel, no root).
# The kernel test (root, private netns) is in tests/integration/nft.cmake.
pcpd_add_test(test_nft
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/nft_element_comment_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_filters_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_forget_queue_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_elements_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_batch_builder_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_batch_grouping_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_batch_refresh_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_conntrack_match_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/nft_checkpoint_test.cpp
  LIBS pcp_nft pcp_ct PkgConfig::NFTNL PkgConfig::MNL)
