// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon announce targets: where each unsolicited announcement goes and from which
// address. Per internal interface: IPv4 to 224.0.0.1:5350 from the interface's IPv4 address,
// IPv6 to [ff02::1]:5350 from its global (never link-local, R-ANN-5) IPv6 address; a family is
// used only when internal_prefixes holds a prefix of it (we serve that family, R-ANN-3). Pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/interface_table.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::daemon {

struct AnnounceTarget {
  std::string interface;
  unsigned ifindex = 0;
  std::optional<wire::IpAddr> source_v4;
  std::optional<wire::IpAddr> source_v6;
};

// RFC 6887 §14.1.3: all-hosts multicast groups, client port 5350.
[[nodiscard]] wire::IpAddr all_hosts_v4();  // 224.0.0.1
[[nodiscard]] wire::IpAddr all_nodes_v6();  // ff02::1

// The interface's address inside internal_prefixes is preferred; otherwise its first usable one.
[[nodiscard]] std::vector<AnnounceTarget> announce_targets(const config::Config& config,
                                                           const config::InterfaceTable& table);

}  // namespace pcpd::daemon
