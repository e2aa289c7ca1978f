# SPDX-License-Identifier: GPL-2.0-or-later
# libFuzzer build (PCPD_FUZZ=ON, clang only): included from tests/fuzz/CMakeLists.txt, after every
# other directory has defined its targets.
#   pcpd_fuzz_instrument_tree(dir): every library and executable defined under `dir` gets
#     -fsanitize=fuzzer-no-link,address,undefined (coverage feedback + ASan/UBSan, errors fatal);
#     executables link the ASan/UBSan runtimes. This is "the whole tree": the fuzz targets' deps
#     (pcp_wire, pcp_core, pcp_util, pcp_client, pcpc_lib) and everything else.
#   pcpd_add_fuzzer(name MAX_LEN n SOURCES ... LIBS ...): fuzz_<name>, linked with
#     -fsanitize=fuzzer; ctest fuzz_replay_<name> (corpus + regressions once) and fuzz_smoke_<name>
#     (PCPD_FUZZ_SMOKE_SECONDS of fuzzing), label fuzz. scripts/fuzz.sh uses the same MAX_LEN.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "PCPD_FUZZ=ON needs clang (libFuzzer): configure with CC=clang CXX=clang++")
endif()

set(PCPD_FUZZ_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

function(pcpd_fuzz_instrument_tree dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "STATIC_LIBRARY" OR type STREQUAL "OBJECT_LIBRARY" OR type STREQUAL "EXECUTABLE"
       OR type STREQUAL "SHARED_LIBRARY" OR type STREQUAL "MODULE_LIBRARY")
      target_compile_options(${t} PRIVATE -fsanitize=fuzzer-no-link ${PCPD_FUZZ_SANITIZE})
      if(NOT type STREQUAL "STATIC_LIBRARY" AND NOT type STREQUAL "OBJECT_LIBRARY")
        target_link_options(${t} PRIVATE -fsanitize=address,undefined)
      endif()
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(s IN LISTS subdirs)
    pcpd_fuzz_instrument_tree(${s})
  endforeach()
endfunction()

# Seconds each target runs in the ctest smoke (label fuzz).
set(PCPD_FUZZ_SMOKE_SECONDS 10 CACHE STRING "Seconds per fuzz target in the ctest smoke")

function(pcpd_add_fuzzer name)
  cmake_parse_arguments(F "" "MAX_LEN" "SOURCES;LIBS" ${ARGN})
  set(t fuzz_${name})
  add_executable(${t} ${F_SOURCES})
  target_link_libraries(${t} PRIVATE ${F_LIBS})
  target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${t} PRIVATE -fsanitize=fuzzer ${PCPD_FUZZ_SANITIZE})
  target_link_options(${t} PRIVATE -fsanitize=fuzzer,address,undefined)
  pcpd_warnings(${t})
  set(seeds ${CMAKE_CURRENT_SOURCE_DIR}/corpus/${name})
  set(regressions ${CMAKE_CURRENT_SOURCE_DIR}/regressions/${name})
  set(work ${CMAKE_CURRENT_BINARY_DIR}/work/${name})
  # Replay: every committed seed and crash regression once (-runs=0 only loads the corpus).
  add_test(NAME fuzz_replay_${name}
           COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
                   $<TARGET_FILE:${t}> -runs=0 ${seeds} ${regressions})
  # Smoke: fuzz for a fixed time; new inputs go to the build tree, never to the source corpus.
  add_test(NAME fuzz_smoke_${name}
           COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
                   $<TARGET_FILE:${t}> -max_total_time=${PCPD_FUZZ_SMOKE_SECONDS}
                   -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -max_len=${F_MAX_LEN} ${work} ${seeds} ${regressions})
  set_tests_properties(fuzz_replay_${name} fuzz_smoke_${name} PROPERTIES LABELS fuzz)
  set_tests_properties(fuzz_smoke_${name} PROPERTIES TIMEOUT 300)
  file(MAKE_DIRECTORY ${work} ${seeds} ${regressions})
  set_property(GLOBAL APPEND PROPERTY PCPD_FUZZERS ${t})
endfunction()
