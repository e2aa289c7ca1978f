// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/announce_targets.hpp"

#include <algorithm>

namespace pcpd::daemon {

wire::IpAddr all_hosts_v4() { return wire::IpAddr::from_v4(0xe0000001u); }

wire::IpAddr all_nodes_v6() {
  wire::IpAddr a;
  a.bytes[0] = 0xff;
  a.bytes[1] = 0x02;
  a.bytes[15] = 0x01;
  return a;
}

std::vector<AnnounceTarget> announce_targets(const config::Config& config,
                                             const config::InterfaceTable& table) {
  const auto& prefixes = config.internal_prefixes;
  const bool serve_v4 = std::any_of(prefixes.begin(), prefixes.end(),
                                    [](const wire::Prefix& p) { return p.addr.is_v4(); });
  const bool serve_v6 = std::any_of(prefixes.begin(), prefixes.end(),
                                    [](const wire::Prefix& p) { return !p.addr.is_v4(); });
  std::vector<AnnounceTarget> out;
  for (const auto& name : config.internal_interfaces) {
    const config::Interface* itf = table.find(name);
    if (itf == nullptr || itf->index == 0) continue;
    AnnounceTarget t{name, itf->index, std::nullopt, std::nullopt};
    auto pick = [&](auto usable) -> std::optional<wire::IpAddr> {
      std::optional<wire::IpAddr> first;
      for (const auto& a : itf->addrs) {
        if (!usable(a.addr)) continue;
        if (config.accepts_source(a.addr)) return a.addr;
        if (!first) first = a.addr;
      }
      return first;
    };
    if (serve_v4)
      t.source_v4 = pick([](const wire::IpAddr& a) {
        return a.is_v4() && !a.is_unspecified() && !config::is_link_local(a);
      });
    // R-ANN-5: the interface's global unicast address, never the link-local one.
    if (serve_v6) t.source_v6 = pick([](const wire::IpAddr& a) { return config::is_global_v6(a); });
    if (t.source_v4 || t.source_v6) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace pcpd::daemon
