# SPDX-License-Identifier: GPL-2.0-or-later
# Fuzz part: the committed fuzz corpus and crash regressions (tests/fuzz/) replayed through the
# fuzz targets' entry points in the ordinary build (no clang/libFuzzer needed). The libFuzzer
# targets themselves are in tests/fuzz/CMakeLists.txt (PCPD_FUZZ=ON).
set(fuzz_dir ${CMAKE_CURRENT_LIST_DIR}/../fuzz)
foreach(t decode_request decode_response roundtrip natpmp server)
  add_library(fuzz_one_${t} OBJECT ${fuzz_dir}/fuzz_${t}.cpp)
  target_compile_definitions(fuzz_one_${t} PRIVATE PCPD_FUZZ_REPLAY
                             LLVMFuzzerTestOneInput=pcpd_fuzz_one_${t})
  target_include_directories(fuzz_one_${t} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(fuzz_one_${t} PRIVATE pcp_wire)
  pcpd_warnings(fuzz_one_${t})
endforeach()
target_link_libraries(fuzz_one_decode_response PRIVATE pcp_client pcpc_lib)
target_link_libraries(fuzz_one_server PRIVATE pcp_core)
pcpd_add_test(test_fuzz_replay
  SOURCES ${fuzz_dir}/replay_test.cpp
    $<TARGET_OBJECTS:fuzz_one_decode_request> $<TARGET_OBJECTS:fuzz_one_decode_response>
    $<TARGET_OBJECTS:fuzz_one_roundtrip> $<TARGET_OBJECTS:fuzz_one_natpmp>
    $<TARGET_OBJECTS:fuzz_one_server>
  LIBS pcpc_lib pcp_client pcp_core pcp_wire)
