# SPDX-License-Identifier: GPL-2.0-or-later
# Flood test: pcp_flood (tests/tools) floods the server from one client address while
# probing the latency of other clients' MAP create/refresh; it_flood.sh drives both in the lab.
add_executable(pcp_flood ${PROJECT_SOURCE_DIR}/tests/tools/pcp_flood.cpp)
target_include_directories(pcp_flood PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(pcp_flood PRIVATE pcp_wire CLI11::CLI11 nlohmann_json::nlohmann_json)
pcpd_warnings(pcp_flood)
# GCC 12 reports a false -Wnull-dereference inside CLI11 2.1's inlined CLI::detail::split.
target_compile_options(pcp_flood PRIVATE -Wno-null-dereference)
pcpd_add_netns_test(it_flood integration/it_flood.sh)
