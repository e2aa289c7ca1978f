# SPDX-License-Identifier: GPL-2.0-or-later
# The benchmark harness, run for a few seconds (issue: "a CI smoke run proves the harness works").
pcpd_add_netns_test(bench_smoke integration/bench_smoke.sh)
# bench/flat.sh (the 100 vs 1,000,000 comparison), tiny sizes.
pcpd_add_netns_test(bench_flat_smoke integration/bench_flat_smoke.sh)
# bench/nft_cost.sh (the kernel's own cost per request at two table sizes), tiny sizes.
pcpd_add_netns_test(bench_nft_cost_smoke integration/bench_nft_cost_smoke.sh)
# bench/ct_load.sh (pcpd on a busy router: conntrack work beside requests), tiny sizes.
pcpd_add_netns_test(bench_ct_load_smoke integration/bench_ct_load_smoke.sh)
