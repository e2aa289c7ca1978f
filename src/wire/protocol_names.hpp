// SPDX-License-Identifier: GPL-2.0-or-later
// Transport protocol names as the configuration, pcpctl and pcpc write them (IANA protocol
// numbers; 0 = "all", RFC 6887 §11.1: every protocol).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pcpd::wire {

// "all" (0), "tcp", "udp", "dccp", "sctp", "udplite", or a number 0-255. nullopt otherwise.
// Callers that take no "all" refuse 0 themselves.
[[nodiscard]] std::optional<std::uint8_t> parse_protocol(std::string_view text);
// The name parse_protocol() reads, or the number.
[[nodiscard]] std::string protocol_name(std::uint8_t protocol);

}  // namespace pcpd::wire
