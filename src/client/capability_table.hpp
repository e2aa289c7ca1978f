// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::CapabilityTable: the CAPABILITY set of each PCP server a host hears from
// (draft-boucadair-hops-capability-discovery-00 R-CAP-2): one set per server, replaced by every
// CAPABILITY that server sends (a response or an unsolicited ANNOUNCE). Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "wire/capability.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::client {

class CapabilityTable {
 public:
  // Records `set` as `server`'s set. True when it is new or differs from the one known.
  bool update(const wire::IpAddr& server, const wire::CapabilitySet& set);
  [[nodiscard]] std::optional<wire::CapabilitySet> find(const wire::IpAddr& server) const;
  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<wire::IpAddr, wire::CapabilitySet>> entries_;
};

}  // namespace pcpd::client
