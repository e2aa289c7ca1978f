# SPDX-License-Identifier: GPL-2.0-or-later
# Restart snapshot: pure encode/decode of state_dir/mappings.snapshot and its file
# functions (src/pcpd/mapping_snapshot.*). The kernel/daemon side is tests/integration/it_snapshot.sh.
pcpd_add_test(test_snapshot
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/snapshot_test.cpp
  LIBS pcpd_helpers)

# Mapping journal: replay against a random model, cut tails, header checks, JournalTap
# (src/pcpd/mapping_journal.*, journal_tap.*). The daemon side is tests/integration/it_journal.sh.
pcpd_add_test(test_journal
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/journal_test.cpp
  LIBS pcpd_helpers)
