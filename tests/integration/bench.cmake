# The benchmark harness, run for a few seconds (issue: "a CI smoke run proves the harness works").
pcpd_add_netns_test(bench_smoke integration/bench_smoke.sh)
