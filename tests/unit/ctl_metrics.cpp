// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_ctl metrics: the latency histogram and the Prometheus text exposition format that
// `pcpctl stats --format prometheus` prints for node_exporter's textfile collector.
#include <doctest/doctest.h>

#include <string>

#include "ctl/latency_histogram.hpp"
#include "ctl/metrics.hpp"

using pcpd::ctl::LatencyHistogram;
using pcpd::ctl::Metrics;

namespace {
bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}
}  // namespace

TEST_CASE("latency histogram: buckets are upper bounds, inclusive, the last one +Inf") {
  LatencyHistogram h;
  h.record(0);        // <= 25 us
  h.record(25);       // <= 25 us (bounds are inclusive, as Prometheus' le)
  h.record(26);       // <= 50 us
  h.record(3000);     // <= 5 ms
  h.record(5000000);  // above the last bound: +Inf only
  CHECK(h.count() == 5);
  CHECK(h.sum_us() == 0 + 25 + 26 + 3000 + 5000000);
  CHECK(h.cumulative(0) == 2);
  CHECK(h.cumulative(1) == 3);
  CHECK(h.cumulative(6) == 3);  // <= 2.5 ms
  CHECK(h.cumulative(7) == 4);  // <= 5 ms
  CHECK(h.cumulative(LatencyHistogram::kBoundsUs.size() - 1) == 4);
  CHECK(h.cumulative(LatencyHistogram::kBoundsUs.size()) == 5);
}

TEST_CASE("prometheus: a histogram renders cumulative _bucket lines in seconds, _sum and _count") {
  LatencyHistogram h;
  h.record(40);
  h.record(800);
  Metrics m;
  pcpd::ctl::add_histogram(m, "pcpd_request_duration_seconds", "request time", h);
  const std::string p = pcpd::ctl::render_prometheus(m.json());
  CHECK(has_line(p, "# TYPE pcpd_request_duration_seconds histogram"));
  CHECK(has_line(p, "pcpd_request_duration_seconds_bucket{le=\"2.5e-05\"} 0"));
  CHECK(has_line(p, "pcpd_request_duration_seconds_bucket{le=\"5e-05\"} 1"));
  CHECK(has_line(p, "pcpd_request_duration_seconds_bucket{le=\"0.001\"} 2"));
  CHECK(has_line(p, "pcpd_request_duration_seconds_bucket{le=\"1\"} 2"));
  CHECK(has_line(p, "pcpd_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
  CHECK(has_line(p, "pcpd_request_duration_seconds_sum 0.00084"));
  CHECK(has_line(p, "pcpd_request_duration_seconds_count 2"));
  // the text format names the samples the same way
  const std::string t = pcpd::ctl::render_text(m.json());
  CHECK(has_line(t, "pcpd_request_duration_seconds_count 2"));
}

TEST_CASE("prometheus: counters carry HELP and TYPE, labels are quoted and escaped") {
  Metrics m;
  m.family("pcpd_x_total", "counter", "a counter")
      .sample(3, {{"reason", "a\"b"}})
      .sample(4, {{"reason", "plain"}});
  const std::string p = pcpd::ctl::render_prometheus(m.json());
  CHECK(has_line(p, "# HELP pcpd_x_total a counter"));
  CHECK(has_line(p, "# TYPE pcpd_x_total counter"));
  CHECK(has_line(p, "pcpd_x_total{reason=\"a\\\"b\"} 3"));
  CHECK(has_line(p, "pcpd_x_total{reason=\"plain\"} 4"));
}
