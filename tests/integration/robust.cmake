# SPDX-License-Identifier: GPL-2.0-or-later
# Robustness integration tests, label netns: kill -9 under load and restart
# (it_crash.sh), the nftables table deleted / replaced under a running pcpd (it_datapath_fail.sh).
# Both use tests/integration/robust_tool.py (load, ownership check, list/table consistency).
pcpd_add_netns_test(it_crash integration/it_crash.sh)
pcpd_add_netns_test(it_datapath_fail integration/it_datapath_fail.sh)
# One nftables transaction per socket read, and its per-request fallback (it_burst.sh).
pcpd_add_netns_test(it_burst integration/it_burst.sh)
