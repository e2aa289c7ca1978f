// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::config parser: TOML text (toml++) -> validated Config. Unknown tables or keys, wrong
// types and out-of-range values are errors; every error is a ConfigError naming file:line.
// Does not look at the system (interfaces): see interface_table.hpp for that second step.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace pcpd::config {

// Reads and validates `path`. Throws ConfigError (file unreadable: line 0).
[[nodiscard]] Config parse_config_file(const std::string& path);

// Validates TOML `text`; `file` names it in messages. Throws ConfigError.
[[nodiscard]] Config parse_config_text(std::string_view text, const std::string& file);

// [capability] names = "auto" (hops-00): sets policy.capabilities from what pcpd is configured
// to do: nat44 (mappings.nat44 with an external IPv4 address), ipv6-firewall
// (mappings.ipv6_firewall) and the transport bits of mappings.protocols. Never ipv4-firewall:
// pcpd's IPv4 side is NAT44, the IPv4 filtering belongs to the operator's firewall
// (docs/capability.md). No-op unless config.capability_auto. Parsing and resolve_interfaces()
// call it; call it again after changing the policy by hand.
void derive_capabilities(Config& config);

}  // namespace pcpd::config
