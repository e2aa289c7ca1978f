# SPDX-License-Identifier: GPL-2.0-or-later
# nft part: test_nft_kernel (root): NftDatapath on the real kernel in a private network namespace.
add_executable(test_nft_kernel ${CMAKE_CURRENT_LIST_DIR}/nft_kernel_test.cpp)
target_link_libraries(test_nft_kernel PRIVATE pcp_nft pcp_ct doctest::doctest PkgConfig::NFTNL PkgConfig::MNL)
target_include_directories(test_nft_kernel PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
target_compile_definitions(test_nft_kernel PRIVATE PCPD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
pcpd_warnings(test_nft_kernel)
pcpd_add_netns_test(nft_kernel integration/nft_kernel_test.sh)
pcpd_add_netns_test(nft_traffic integration/nft_traffic_test.sh)
# RFC 7767 checkpointing in the kernel (root, lan - rtr - wan namespaces): election marks, event
# masks, ct_touch.
add_executable(test_ckpt_kernel ${CMAKE_CURRENT_LIST_DIR}/ckpt_kernel_test.cpp)
target_link_libraries(test_ckpt_kernel PRIVATE pcp_nft pcp_ct doctest::doctest)
target_include_directories(test_ckpt_kernel PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
target_compile_definitions(test_ckpt_kernel PRIVATE PCPD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
pcpd_warnings(test_ckpt_kernel)
pcpd_add_netns_test(ckpt_kernel integration/ckpt_kernel_test.sh)
