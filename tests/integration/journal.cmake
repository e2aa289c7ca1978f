# SPDX-License-Identifier: GPL-2.0-or-later
# Mapping journal: kill -9 -> snapshot + journal -> restore without the nft dump;
# fallbacks to the dump on a foreign nft transaction and a record cut short; compaction.
pcpd_add_netns_test(it_journal integration/it_journal.sh)
