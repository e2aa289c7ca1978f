# Restart snapshot (issue 7): pure encode/decode of state_dir/mappings.snapshot and its file
# functions (src/pcpd/mapping_snapshot.*). The kernel/daemon side is tests/integration/it_snapshot.sh.
pcpd_add_test(test_snapshot
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/snapshot_test.cpp
  LIBS pcpd_helpers)
