// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::config interface look-up: the addresses configured on the host's interfaces, and the
// step that derives the defaults of interfaces.internal_prefixes and external_address from
// them. Tests build an InterfaceTable by hand instead of calling system_interfaces().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::config {

struct InterfaceAddress {
  wire::IpAddr addr;           // IPv4 in mapped form
  std::uint8_t prefix_len = 0;  // family-native (24 for 192.0.2.0/24, 64 for an IPv6 /64)
};

struct Interface {
  std::string name;
  unsigned index = 0;  // ifindex
  std::vector<InterfaceAddress> addrs;
};

struct InterfaceTable {
  std::vector<Interface> interfaces;
  [[nodiscard]] const Interface* find(std::string_view name) const;
};

// getifaddrs(3): every interface with its IPv4/IPv6 addresses. Throws std::system_error.
[[nodiscard]] InterfaceTable system_interfaces();

// The usable IPv4 addresses of interface `name` (not link-local), in the kernel's order: the
// default of interfaces.external_address, and what pcpd follows when the WAN address changes.
// Empty when the interface is missing or has none.
[[nodiscard]] std::vector<wire::IpAddr> external_v4_of(const InterfaceTable& table, std::string_view name);

// IPv6 link-local (fe80::/10) or IPv4 link-local (169.254/16).
[[nodiscard]] bool is_link_local(const wire::IpAddr& addr);
// A global-scope IPv6 unicast address usable as a source (not link-local, loopback, multicast).
[[nodiscard]] bool is_global_v6(const wire::IpAddr& addr);

// Fills the defaults that depend on the host: internal_prefixes (the non-link-local prefixes on
// the internal interfaces) and, with nat44, policy.external_v4 (the IPv4 addresses of the
// external interface). Throws ConfigError (at interfaces.internal's line) when an internal
// interface is missing or no prefix can be derived. Returns warnings for the operator (e.g. the
// external interface has no IPv4 address yet: NAT44 requests get NETWORK_FAILURE).
std::vector<std::string> resolve_interfaces(Config& config, const InterfaceTable& table);

}  // namespace pcpd::config
