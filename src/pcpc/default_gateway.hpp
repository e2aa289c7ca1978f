// SPDX-License-Identifier: GPL-2.0-or-later
// pcpc's default server: the default gateway (RFC 6887 §8.1: the default router is the usual
// PCP server). Parsers of the /proc route tables are pure; default_gateway() reads the files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "wire/ip_addr.hpp"

namespace pcpd::pcpc {

struct Gateway {
  wire::IpAddr addr{};
  std::string interface;
};

// /proc/net/route: the default route (destination 0, mask 0, RTF_GATEWAY) with the lowest metric.
[[nodiscard]] std::optional<Gateway> parse_ipv4_default_route(std::string_view table);
// /proc/net/ipv6_route: ::/0 with a non-zero next hop, lowest metric.
[[nodiscard]] std::optional<Gateway> parse_ipv6_default_route(std::string_view table);

// The IPv4 default gateway, else the IPv6 one; `want_v6` picks the IPv6 table only / first.
[[nodiscard]] std::optional<Gateway> default_gateway(std::optional<bool> want_v6);

}  // namespace pcpd::pcpc
