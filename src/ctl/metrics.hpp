// pcpd::ctl metrics: the daemon's counters as a list of metric families, and their renderings
// (text for people, Prometheus text exposition format 0.0.4 for node_exporter's textfile
// collector). Shape of a family:
//   {"name": "pcpd_responses_total", "help": "...", "type": "counter"|"gauge",
//    "samples": [{"labels": {"result": "SUCCESS"}, "value": 12}]}
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/stats.hpp"

namespace pcpd::ctl {

// Builder used by the daemon: adds families one by one.
class Metrics {
 public:
  Metrics& family(const std::string& name, const std::string& type, const std::string& help);
  Metrics& sample(double value, nlohmann::json labels = nlohmann::json::object());
  [[nodiscard]] const nlohmann::json& json() const { return families_; }

 private:
  nlohmann::json families_ = nlohmann::json::array();
};

// The core counters (requests by opcode, responses by result code, mapping lifecycle).
void add_core_metrics(Metrics& m, const core::Stats& s);

std::string render_text(const nlohmann::json& families);
std::string render_prometheus(const nlohmann::json& families);

}  // namespace pcpd::ctl
