# SPDX-License-Identifier: GPL-2.0-or-later
# Restart snapshot: SIGTERM -> snapshot -> restore without the nft dump; fallbacks to
# the dump on a ruleset change, a corrupt snapshot and kill -9 (root, private namespaces).
pcpd_add_netns_test(it_snapshot integration/it_snapshot.sh)
