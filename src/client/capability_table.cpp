// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/capability_table.hpp"

namespace pcpd::client {

bool CapabilityTable::update(const wire::IpAddr& server, const wire::CapabilitySet& set) {
  for (auto& [addr, known] : entries_) {
    if (addr != server) continue;
    // R-CAP-2: the newest set replaces the previous one.
    const bool changed = known != set;
    known = set;
    return changed;
  }
  entries_.emplace_back(server, set);
  return true;
}

std::optional<wire::CapabilitySet> CapabilityTable::find(const wire::IpAddr& server) const {
  for (const auto& [addr, known] : entries_)
    if (addr == server) return known;
  return std::nullopt;
}

}  // namespace pcpd::client
