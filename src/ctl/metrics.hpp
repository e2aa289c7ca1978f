// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ctl metrics: the daemon's counters as a list of metric families, and their renderings
// (text for people, Prometheus text exposition format 0.0.4 for node_exporter's textfile
// collector). Shape of a family:
//   {"name": "pcpd_responses_total", "help": "...", "type": "counter"|"gauge",
//    "samples": [{"labels": {"result": "SUCCESS"}, "value": 12}]}
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/stats.hpp"
#include "ctl/latency_histogram.hpp"

namespace pcpd::ctl {

// Builder used by the daemon: adds families one by one.
class Metrics {
 public:
  Metrics& family(const std::string& name, const std::string& type, const std::string& help);
  Metrics& sample(double value, nlohmann::json labels = nlohmann::json::object());
  // A sample of a histogram family: `suffix` is _bucket, _sum or _count.
  Metrics& sample(double value, nlohmann::json labels, const std::string& suffix);
  [[nodiscard]] const nlohmann::json& json() const { return families_; }

 private:
  nlohmann::json families_ = nlohmann::json::array();
};

// The core counters (requests by opcode, responses by result code, mapping lifecycle).
void add_core_metrics(Metrics& m, const core::Stats& s);

// A histogram family in seconds (Prometheus convention): name_bucket{le=...}, name_sum,
// name_count.
void add_histogram(Metrics& m, const std::string& name, const std::string& help,
                   const LatencyHistogram& h);

std::string render_text(const nlohmann::json& families);
std::string render_prometheus(const nlohmann::json& families);

}  // namespace pcpd::ctl
