// SPDX-License-Identifier: GPL-2.0-or-later
#include "ctl/metrics.hpp"

#include <cmath>
#include <cstdio>

#include "wire/codec.hpp"

namespace pcpd::ctl {

Metrics& Metrics::family(const std::string& name, const std::string& type, const std::string& help) {
  families_.push_back({{"name", name}, {"type", type}, {"help", help}, {"samples", nlohmann::json::array()}});
  return *this;
}

Metrics& Metrics::sample(double value, nlohmann::json labels) {
  families_.back()["samples"].push_back({{"labels", std::move(labels)}, {"value", value}});
  return *this;
}

Metrics& Metrics::sample(double value, nlohmann::json labels, const std::string& suffix) {
  families_.back()["samples"].push_back(
      {{"labels", std::move(labels)}, {"value", value}, {"suffix", suffix}});
  return *this;
}

void add_histogram(Metrics& m, const std::string& name, const std::string& help,
                   const LatencyHistogram& h) {
  m.family(name, "histogram", help);
  for (std::size_t i = 0; i < LatencyHistogram::kBoundsUs.size(); ++i) {
    char le[32];
    std::snprintf(le, sizeof le, "%g", LatencyHistogram::kBoundsUs[i] / 1e6);
    m.sample(static_cast<double>(h.cumulative(i)), {{"le", le}}, "_bucket");
  }
  m.sample(static_cast<double>(h.count()), {{"le", "+Inf"}}, "_bucket");
  m.sample(static_cast<double>(h.sum_us()) / 1e6, nlohmann::json::object(), "_sum");
  m.sample(static_cast<double>(h.count()), nlohmann::json::object(), "_count");
}

void add_core_metrics(Metrics& m, const core::Stats& s) {
  static const char* const kOpcodes[] = {"ANNOUNCE", "MAP", "PEER", "other"};
  m.family("pcpd_requests_total", "counter", "PCP requests decoded, by opcode");
  for (std::size_t i = 0; i < s.requests_by_opcode.size(); ++i)
    m.sample(static_cast<double>(s.requests_by_opcode[i]), {{"opcode", kOpcodes[i]}});
  m.family("pcpd_responses_total", "counter", "PCP responses sent, by result code");
  for (std::size_t i = 0; i < s.responses_by_result.size(); ++i)
    if (s.responses_by_result[i] != 0 || i <= 13)
      m.sample(static_cast<double>(s.responses_by_result[i]),
               {{"result", wire::to_string(static_cast<wire::ResultCode>(i))}});
  m.family("pcpd_dropped_total", "counter", "PCP requests dropped silently (RFC 6887 section 8.2)")
      .sample(static_cast<double>(s.dropped));
  // RFC 6887 §18.1: PCP and NAT-PMP requests refused by the rate limits ([limits]), dropped
  // silently before decoding.
  m.family("pcpd_refused_total", "counter", "requests refused before decoding (dropped silently), by reason")
      .sample(static_cast<double>(s.rate_limited_client), {{"reason", "rate_limited_client"}})
      .sample(static_cast<double>(s.rate_limited_global), {{"reason", "rate_limited_global"}});
  m.family("pcpd_prefer_failure_limited_total", "counter",
           "PREFER_FAILURE creates over the per-client limit, answered CANNOT_PROVIDE_EXTERNAL unchecked (RFC 6887 section 13.2)")
      .sample(static_cast<double>(s.prefer_failure_limited));
  m.family("pcpd_natpmp_requests_total", "counter", "NAT-PMP requests").sample(static_cast<double>(s.natpmp_requests));
  m.family("pcpd_natpmp_errors_total", "counter", "NAT-PMP error responses").sample(static_cast<double>(s.natpmp_errors));
  m.family("pcpd_datapath_errors_total", "counter", "kernel batches refused (request answered with an error)")
      .sample(static_cast<double>(s.datapath_errors));
  // Server::handle_burst: receive batches applied in one nftables transaction, and those the
  // kernel refused, whose requests were then applied one at a time.
  m.family("pcpd_bursts_total", "counter", "transactions of several requests of one socket read, by outcome")
      .sample(static_cast<double>(s.bursts), {{"outcome", "one_transaction"}})
      .sample(static_cast<double>(s.burst_retries), {{"outcome", "retried_per_request"}});
  m.family("pcpd_mapping_events_total", "counter", "mapping lifecycle events")
      .sample(static_cast<double>(s.created), {{"event", "created"}})
      .sample(static_cast<double>(s.refreshed), {{"event", "refreshed"}})
      .sample(static_cast<double>(s.deleted), {{"event", "deleted"}})
      .sample(static_cast<double>(s.expired), {{"event", "expired"}})
      .sample(static_cast<double>(s.restored), {{"event", "restored"}})
      .sample(static_cast<double>(s.restore_conflicts), {{"event", "restore_conflict"}});
}

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string labels_text(const nlohmann::json& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : labels.items()) {
    s += (first ? "" : ",") + k + "=\"" + escape_label(v.is_string() ? v.get<std::string>() : v.dump()) + "\"";
    first = false;
  }
  return s + "}";
}

std::string value_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  return buf;
}

}  // namespace

std::string render_text(const nlohmann::json& families) {
  std::string out;
  for (const auto& f : families)
    for (const auto& s : f["samples"])
      out += f["name"].get<std::string>() + s.value("suffix", std::string{}) + labels_text(s["labels"]) + " " +
             value_text(s["value"].get<double>()) + "\n";
  return out;
}

std::string render_prometheus(const nlohmann::json& families) {
  std::string out;
  for (const auto& f : families) {
    const auto name = f["name"].get<std::string>();
    out += "# HELP " + name + " " + f["help"].get<std::string>() + "\n";
    out += "# TYPE " + name + " " + f["type"].get<std::string>() + "\n";
    for (const auto& s : f["samples"])
      out += name + s.value("suffix", std::string{}) + labels_text(s["labels"]) + " " +
             value_text(s["value"].get<double>()) + "\n";
  }
  return out;
}

}  // namespace pcpd::ctl
